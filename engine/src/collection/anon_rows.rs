//! Growable rows of the appendable segment, kept in an anonymous memory map instead of a `Vec`.
//!
//! A `Vec` grows by allocating a block twice the size and copying into it, so while the appendable
//! segment's vectors grow past a power of two the process holds 1.5× them, and the allocator keeps
//! the freed block afterwards (measured: 0.2–0.4× the vectors left over after ingest, which a seal
//! then starts from). An anonymous map grows with `mremap` on Linux: the kernel moves the page
//! tables, nothing is copied, new pages are zero until written and resident only once touched. When
//! the segment is sealed and dropped, `munmap` hands the memory straight back to the kernel.

use std::marker::PhantomData;
use std::ops::Deref;

use memmap2::MmapMut;

/// Element types whose every bit pattern is a valid value and whose all-zero pattern is zero, so a
/// fresh (zero-filled) page holds zeros of the type.
pub(crate) trait Plain: Copy + 'static {}
impl Plain for f32 {}
impl Plain for half::f16 {}

/// The smallest map, so that a collection's first points do not remap at every insert.
const MIN_BYTES: usize = 64 * 1024;

/// A growable, contiguous `[T]` in an anonymous memory map.
pub(crate) struct AnonRows<T: Plain> {
    /// `None` until the first element: an empty appendable segment maps nothing.
    map: Option<MmapMut>,
    len: usize,
    _type: PhantomData<T>,
}

impl<T: Plain> Default for AnonRows<T> {
    fn default() -> Self {
        AnonRows {
            map: None,
            len: 0,
            _type: PhantomData,
        }
    }
}

impl<T: Plain> AnonRows<T> {
    /// Elements the current map holds.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.map
            .as_ref()
            .map_or(0, |m| m.len() / std::mem::size_of::<T>())
    }

    /// Appends `values`.
    pub fn extend_from_slice(&mut self, values: &[T]) {
        self.append_with(values.len(), |tail| tail.copy_from_slice(values));
    }

    /// Appends `n` zeros. Costs nothing beyond the length: the map's unused tail is zero (fresh
    /// pages, and nothing ever shrinks the length).
    pub fn extend_zeros(&mut self, n: usize) {
        self.reserve(n);
        self.len += n;
    }

    /// Appends `n` elements written by `fill` into the new tail.
    pub fn append_with(&mut self, n: usize, fill: impl FnOnce(&mut [T])) {
        self.reserve(n);
        let map = match self.map.as_mut() {
            Some(map) => map,
            None => return,
        };
        // SAFETY: the map is page-aligned, at least `len + n` elements long (reserve), and `T` is
        // `Plain`, so any bytes there are valid values of it.
        let tail = unsafe {
            std::slice::from_raw_parts_mut((map.as_mut_ptr() as *mut T).add(self.len), n)
        };
        fill(tail);
        self.len += n;
    }

    /// Makes room for `additional` more elements, doubling the map's size at least.
    fn reserve(&mut self, additional: usize) {
        let size = std::mem::size_of::<T>();
        let needed = self
            .len
            .checked_add(additional)
            .and_then(|n| n.checked_mul(size))
            .expect("appendable segment rows overflow the address space");
        let current = self.map.as_ref().map_or(0, |m| m.len());
        if needed <= current || additional == 0 {
            return;
        }
        let page = page_size();
        let bytes = needed
            .max(current.saturating_mul(2))
            .max(MIN_BYTES)
            .div_ceil(page)
            .saturating_mul(page);
        self.map = Some(match self.map.take() {
            Some(map) => grow(map, bytes, self.len * size),
            None => map_anon(bytes),
        });
    }
}

impl<T: Plain> Deref for AnonRows<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.map {
            // SAFETY: as in `append_with`; the first `len` elements are initialised (zero pages or
            // written values).
            Some(map) => unsafe { std::slice::from_raw_parts(map.as_ptr() as *const T, self.len) },
            None => &[],
        }
    }
}

fn page_size() -> usize {
    // The map's granularity; 4 KiB is the usual size and every larger page size is a multiple.
    4096
}

fn map_anon(bytes: usize) -> MmapMut {
    MmapMut::map_anon(bytes).unwrap_or_else(|_| out_of_memory(bytes))
}

/// Moves the map's pages to a larger map: `mremap` on Linux (no copy), elsewhere a new map and a
/// copy of the `used` bytes.
fn grow(map: MmapMut, bytes: usize, used: usize) -> MmapMut {
    #[cfg(target_os = "linux")]
    {
        let _ = used;
        let mut map = map;
        // SAFETY: the map is anonymous, so the grown part is fresh zero pages, not a file's end.
        if unsafe { map.remap(bytes, memmap2::RemapOptions::new().may_move(true)) }.is_err() {
            out_of_memory(bytes)
        }
        map
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut bigger = map_anon(bytes);
        bigger[..used].copy_from_slice(&map[..used]);
        bigger
    }
}

/// Ends the process as a `Vec` that cannot grow does.
fn out_of_memory(bytes: usize) -> ! {
    let layout = std::alloc::Layout::from_size_align(bytes, page_size())
        .unwrap_or(std::alloc::Layout::new::<u8>());
    std::alloc::handle_alloc_error(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_past_many_remaps_keeping_every_value() {
        let mut rows = AnonRows::<f32>::default();
        assert!(rows.is_empty());
        assert_eq!(rows.capacity(), 0);
        let mut expected = Vec::new();
        let mut next = 0.0f32;
        let mut caps = Vec::new();
        for i in 0..3000usize {
            if i % 7 == 3 {
                rows.extend_zeros(11);
                expected.extend(std::iter::repeat_n(0.0, 11));
            } else {
                let row: Vec<f32> = (0..97)
                    .map(|_| {
                        next += 1.0;
                        next
                    })
                    .collect();
                rows.extend_from_slice(&row);
                expected.extend_from_slice(&row);
            }
            caps.push(rows.capacity());
        }
        assert_eq!(&rows[..], &expected[..]);
        caps.dedup();
        assert!(caps.len() >= 4, "the map grew only {} times", caps.len());
        assert!(rows.capacity() >= rows.len());
        assert!(rows.capacity() <= 2 * rows.len() + MIN_BYTES / 4);
    }

    #[test]
    fn zeros_after_a_grow_are_zero_and_f16_rows_convert() {
        let mut rows = AnonRows::<half::f16>::default();
        rows.append_with(3, |tail| {
            for (t, v) in tail.iter_mut().zip([1.5f32, -2.0, 0.25]) {
                *t = half::f16::from_f32(v);
            }
        });
        rows.extend_zeros(MIN_BYTES);
        assert_eq!(rows.len(), 3 + MIN_BYTES);
        assert_eq!(rows[1].to_f32(), -2.0);
        assert!(rows[3..].iter().all(|v| v.to_f32() == 0.0));
    }
}
