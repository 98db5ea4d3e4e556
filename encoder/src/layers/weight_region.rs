//! One anonymous memory map that holds a model's packed projection weights, advised for huge pages.
//!
//! A short query's forward pass streams every projection weight once (42 MB for
//! all-MiniLM-L6-v2 in f32): in 4 KiB pages that is ten thousand TLB misses a pass. Where the
//! weights sat in memory the allocator had committed whole (and the kernel backed with huge
//! pages), a 7-token query took 3.3 ms of CPU; in lazily committed arena pages 4.1 ms
//! (docs/benchmarks.md). Giving the weights their own map, advised for transparent huge pages
//! (`MADV_HUGEPAGE`, honoured where the kernel's setting is `madvise` or `always`), makes the pass
//! independent of the allocator's policy.

use std::io;

use memmap2::MmapMut;

/// Alignment of every slice in the region: a cache line.
const ALIGN: usize = 64;

/// A read-only region of packed weights, filled once at load.
#[derive(Debug)]
pub struct WeightRegion {
    map: MmapMut,
}

/// Where each slice goes in a region being laid out.
#[derive(Debug, Default)]
pub struct RegionLayout {
    bytes: usize,
}

impl RegionLayout {
    /// Reserves `bytes` (aligned to a cache line) and returns their offset.
    pub fn place(&mut self, bytes: usize) -> usize {
        let at = self.bytes.next_multiple_of(ALIGN);
        self.bytes = at + bytes;
        at
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl WeightRegion {
    /// An anonymous map of `bytes` (zero-filled), advised for huge pages on Linux.
    pub fn new(bytes: usize) -> io::Result<Self> {
        let map = MmapMut::map_anon(bytes.max(1))?;
        #[cfg(target_os = "linux")]
        if let Err(e) = map.advise(memmap2::Advice::HugePage) {
            // Kernels without transparent huge pages refuse the advice: small pages still work.
            tracing::debug!(error = %e, "weights: no huge pages");
        }
        Ok(WeightRegion { map })
    }

    /// Copies `src` to byte `offset` (from [`RegionLayout::place`]).
    pub fn write<T: Copy>(&mut self, offset: usize, src: &[T]) {
        let bytes = std::mem::size_of_val(src);
        assert!(offset.is_multiple_of(ALIGN) && offset + bytes <= self.map.len());
        // SAFETY: the destination range is inside the map (checked) and does not overlap `src`, a
        // slice of another allocation; `T: Copy` values are plain bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr().cast::<u8>(),
                self.map.as_mut_ptr().add(offset),
                bytes,
            )
        }
    }

    /// The `len` values of type `T` at byte `offset`, as written by [`WeightRegion::write`].
    ///
    /// # Safety
    /// A `[T; len]` must have been written at `offset` (so the bytes are valid `T`s).
    pub unsafe fn slice<T: Copy>(&self, offset: usize, len: usize) -> &[T] {
        assert!(offset.is_multiple_of(ALIGN) && std::mem::align_of::<T>() <= ALIGN);
        assert!(offset + len * std::mem::size_of::<T>() <= self.map.len());
        std::slice::from_raw_parts(self.map.as_ptr().add(offset).cast::<T>(), len)
    }
}
