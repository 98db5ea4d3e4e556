//! Device memory held by tensors, for benchmarks: candle allocates CUDA memory stream-ordered from
//! the device's memory pool, whose counters say how much is in use now and at most since a reset
//! (the analogue of PyTorch's `memory_allocated` and `max_memory_allocated`: weights and
//! activations, not the CUDA context or memory the pool keeps cached).

use candle_core::Device;

/// Bytes allocated from the device's memory pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub current: u64,
    /// The most at once since the last [`reset_peak`].
    pub peak: u64,
}

/// The pool's counters; `None` on the CPU or without CUDA support.
pub fn pool_usage(device: &Device) -> crate::Result<Option<PoolUsage>> {
    imp::pool_usage(device)
}

/// Starts a new peak from the current usage (no-op on the CPU).
pub fn reset_peak(device: &Device) -> crate::Result<()> {
    imp::reset_peak(device)
}

/// Lets the pool keep freed memory for the next allocations instead of returning it to the driver
/// at every synchronisation (CUDA's default, which a forward pass that ends by copying its result
/// to the host would pay for again on every batch). No-op on the CPU.
pub fn keep_freed_memory(device: &Device) -> crate::Result<()> {
    imp::keep_freed_memory(device)
}

#[cfg(not(feature = "cuda"))]
mod imp {
    use super::*;

    pub fn pool_usage(_: &Device) -> crate::Result<Option<PoolUsage>> {
        Ok(None)
    }

    pub fn reset_peak(_: &Device) -> crate::Result<()> {
        Ok(())
    }

    pub fn keep_freed_memory(_: &Device) -> crate::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use candle_core::cuda_backend::cudarc::driver::sys;
    use candle_core::cuda_backend::WrapErr;

    use super::*;

    /// The memory pool of the device's stream, with the context bound to this thread.
    fn pool(device: &Device) -> crate::Result<Option<sys::CUmemoryPool>> {
        let Device::Cuda(dev) = device else {
            return Ok(None);
        };
        let stream = dev.cuda_stream();
        let ctx = stream.context();
        ctx.bind_to_thread().w()?;
        let mut pool = std::ptr::null_mut();
        // SAFETY: `pool` is a valid out-pointer and the device handle comes from a live context.
        unsafe { sys::cuDeviceGetMemPool(&mut pool, ctx.cu_device()) }
            .result()
            .w()?;
        Ok(Some(pool))
    }

    fn attribute(pool: sys::CUmemoryPool, attr: sys::CUmemPool_attribute) -> crate::Result<u64> {
        let mut value = 0u64;
        // SAFETY: the used/reserved attributes are 64-bit values, written to `value`.
        unsafe { sys::cuMemPoolGetAttribute(pool, attr, (&mut value) as *mut u64 as *mut _) }
            .result()
            .w()?;
        Ok(value)
    }

    pub fn pool_usage(device: &Device) -> crate::Result<Option<PoolUsage>> {
        let Some(pool) = pool(device)? else {
            return Ok(None);
        };
        use sys::CUmemPool_attribute::*;
        Ok(Some(PoolUsage {
            current: attribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?,
            peak: attribute(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH)?,
        }))
    }

    fn set(device: &Device, attr: sys::CUmemPool_attribute, mut value: u64) -> crate::Result<()> {
        let Some(pool) = pool(device)? else {
            return Ok(());
        };
        // SAFETY: both attributes set here are 64-bit values (CUDA driver API docs).
        unsafe { sys::cuMemPoolSetAttribute(pool, attr, (&mut value) as *mut u64 as *mut _) }
            .result()
            .w()?;
        Ok(())
    }

    pub fn reset_peak(device: &Device) -> crate::Result<()> {
        // Resetting the high-water mark takes zero.
        set(
            device,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
            0,
        )
    }

    pub fn keep_freed_memory(device: &Device) -> crate::Result<()> {
        set(
            device,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            u64::MAX,
        )
    }
}
