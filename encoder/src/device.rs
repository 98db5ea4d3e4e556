//! Where a model runs and in what precision, as the command line names them: `--device
//! cpu|cuda|cuda:N|auto` and `--dtype f32|bf16`.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};

/// Why a device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device {0:?}; use cpu, cuda, cuda:N or auto")]
    Unknown(String),
    #[error("unknown dtype {0:?}; use f32 or bf16")]
    UnknownDtype(String),
    /// CUDA was asked for and this binary was built without it.
    #[error(
        "--device {0}: this quiver was built without CUDA (the `cuda` cargo feature); build it \
         with `cargo build --release --features cuda` (scripts/build-cuda.sh does that without a GPU)"
    )]
    NotCompiled(DeviceChoice),
    /// The CUDA build found no usable GPU at that index.
    #[error("--device {choice}: no GPU answered: {reason}")]
    NoGpu {
        choice: DeviceChoice,
        reason: String,
    },
}

/// A `--device` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU by index (`cuda` is `cuda:0`).
    Cuda(usize),
    /// CUDA GPU 0 when this build has CUDA and a GPU answers, else the CPU.
    #[default]
    Auto,
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            "auto" => Ok(DeviceChoice::Auto),
            _ => lower
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceChoice::Auto => f.write_str("auto"),
        }
    }
}

impl DeviceChoice {
    /// Refuses CUDA in a build without it, before anything is loaded.
    pub fn check_compiled(self) -> Result<(), DeviceError> {
        match self {
            DeviceChoice::Cuda(_) if !cuda_compiled() => Err(DeviceError::NotCompiled(self)),
            _ => Ok(()),
        }
    }

    /// Opens the device. `auto` logs what it chose and why.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(n) => {
                self.check_compiled()?;
                Device::new_cuda(n).map_err(|e| DeviceError::NoGpu {
                    choice: self,
                    reason: first_line(&e),
                })
            }
            DeviceChoice::Auto if !cuda_compiled() => {
                tracing::info!(
                    "--device auto: using the CPU (this build has no CUDA; the `cuda` feature adds it)"
                );
                Ok(Device::Cpu)
            }
            DeviceChoice::Auto => match Device::new_cuda(0) {
                Ok(device) => {
                    tracing::info!("--device auto: using CUDA GPU 0");
                    Ok(device)
                }
                Err(e) => {
                    tracing::info!(
                        error = %first_line(&e),
                        "--device auto: no GPU answered; using the CPU"
                    );
                    Ok(Device::Cpu)
                }
            },
        }
    }
}

/// candle attaches a backtrace to driver errors; the first line says what failed.
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// True when this binary was built with the `cuda` feature.
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// Parses `--dtype`: `f32` (`float32`) or `bf16` (`bfloat16`).
pub fn parse_dtype(s: &str) -> Result<DType, DeviceError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        _ => Err(DeviceError::UnknownDtype(s.to_string())),
    }
}

/// The compute type when none is asked for: bf16 on a GPU (f32 accumulation inside the kernels),
/// f32 on the CPU (where bf16 is slower, not faster).
pub fn default_dtype(device: &Device) -> DType {
    if device.is_cuda() {
        DType::BF16
    } else {
        DType::F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "CUDA".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!(
            "cuda:3".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(3)
        );
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        for bad in ["", "tpu", "cuda:", "cuda:x", "cuda:-1"] {
            assert!(bad.parse::<DeviceChoice>().is_err(), "{bad:?}");
        }
        assert_eq!(DeviceChoice::Cuda(1).to_string(), "cuda:1");
        assert_eq!(parse_dtype("BF16").unwrap(), DType::BF16);
        assert_eq!(parse_dtype("float32").unwrap(), DType::F32);
        assert!(parse_dtype("f16").is_err());
        assert_eq!(default_dtype(&Device::Cpu), DType::F32);
    }

    #[test]
    fn cpu_and_auto_resolve_without_a_gpu_build() {
        assert!(DeviceChoice::Cpu.resolve().unwrap().is_cpu());
        if !cuda_compiled() {
            assert!(DeviceChoice::Auto.resolve().unwrap().is_cpu());
            let err = DeviceChoice::Cuda(0).resolve().unwrap_err().to_string();
            assert!(err.contains("`cuda` cargo feature"), "{err}");
            assert!(DeviceChoice::Cuda(2).check_compiled().is_err());
            assert!(DeviceChoice::Auto.check_compiled().is_ok());
        }
    }
}
