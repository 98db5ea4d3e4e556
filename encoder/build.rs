//! With the `cuda` feature, compiles the decoder's fused kernels (`kernels/*.cu`) to PTX with nvcc;
//! the library embeds the PTX and candle's CUDA device loads it at first use. Without the feature
//! this does nothing, so the default build needs no CUDA toolkit.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: &[&str] = &["decoder"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".into());
    // PTX for the virtual architecture: the driver compiles it for the GPU it finds (this one or
    // any newer), as it does candle's kernels.
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let cap: String = cap.chars().filter(char::is_ascii_digit).collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in KERNELS {
        let src = format!("kernels/{name}.cu");
        println!("cargo:rerun-if-changed={src}");
        let ptx = out.join(format!("{name}.ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-std=c++17", "-O3", "-lineinfo"])
            .arg(format!("-arch=compute_{cap}"))
            .arg("-o")
            .arg(&ptx)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {nvcc} (set NVCC or put nvcc on PATH; see scripts/build-cuda.sh): {e}")
            });
        assert!(status.success(), "{nvcc} failed on {src}");
    }
}
