//! Loading and launching the fused kernels on candle's CUDA device (only with the `cuda` feature).

use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig};
use candle_core::cuda_backend::CudaDType;
use candle_core::{CudaStorage, DType, Layout, Result};

/// `encoder/kernels/decoder.cu`, compiled to PTX by the build script.
pub(crate) const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/decoder.ptx"));
pub(crate) const MODULE: &str = "quiver_decoder";

/// The name of kernel `name` for the storage type: `{name}_{f32|bf16}`.
pub(crate) fn kernel_name(name: &str, dtype: DType) -> Result<String> {
    let suffix = match dtype {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        other => candle_core::bail!("{name}: no kernel for {other:?}"),
    };
    Ok(format!("{name}_{suffix}"))
}

/// Loads kernel `name` for `dtype` on a `CudaDevice` (loading the module at first use). A macro
/// because the handle's type is private to candle.
macro_rules! kernel {
    ($dev:expr, $name:expr, $dtype:expr) => {
        $dev.get_or_load_custom_func(
            &$crate::layers::fused::cuda::kernel_name($name, $dtype)?,
            $crate::layers::fused::cuda::MODULE,
            $crate::layers::fused::cuda::PTX,
        )
    };
}
pub(crate) use kernel;

/// The contiguous elements of a tensor on the device, as a view the kernels index from 0.
pub(crate) fn view<'a, T: CudaDType>(
    s: &'a CudaStorage,
    l: &Layout,
    op: &str,
) -> Result<CudaView<'a, T>> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{op} needs contiguous tensors");
    };
    Ok(s.as_cuda_slice::<T>()?.slice(a..b))
}

/// `blocks` blocks of `threads` threads, no dynamic shared memory.
pub(crate) fn grid(blocks: (u32, u32), threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks.0, blocks.1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The dtype of a CUDA storage (for picking the kernel).
pub(crate) fn dtype(s: &CudaStorage) -> DType {
    use candle_core::backend::BackendStorage;
    s.dtype()
}
