//! `y = x · W + b` for a few rows of `x` (a short query's tokens) on the CPU, reading each weight
//! once per call.
//!
//! For a handful of rows a dense layer is bound by streaming its weights from memory, not by
//! arithmetic: all-MiniLM-L6-v2's projections hold 42 MB of f32 weights, more than the last-level
//! cache, and a 7-token query does 7 multiply-adds per weight. gemm splits seven rows into a
//! six-row and a one-row panel and sweeps `W` once for each. This kernel sweeps it once:
//!
//! - At load `W` (`[in, out]`) is repacked into strips of [`STRIP`] output columns, each strip
//!   `[in][STRIP]` contiguous (the last one padded with zeros), so a strip is one sequential
//!   stream the hardware prefetcher follows.
//! - A strip's accumulators, for every row at once (in tiles of up to [`MAX_TILE`] rows, the
//!   first tile reading the strip from memory and the next ones from L1/L2), start at the bias and
//!   take one fused multiply-add per weight and row, in the order of `in`: a fixed order, so a given
//!   machine always returns the same bits.
//! - Strips are split over the rayon pool the caller runs in (the encoder's forward pass runs inside
//!   one), each task a run of neighbouring strips.
//!
//! The weights may instead be kept as f16 ([`Precision::F16`], an opt-in: the values change) and
//! widened in the kernel, halving the bytes streamed.
//!
//! On x86_64 with AVX-512F, detected at run time, a strip is one 16-lane register per row and up
//! to [`MAX_TILE_512`] rows share a pass over it; with AVX2 and FMA (and F16C for f16 weights) it
//! is two 8-lane registers per row in tiles of up to [`MAX_TILE`] rows. Both take the same fused
//! multiply-adds in the same order, so they return the same bits. Elsewhere a portable loop
//! computes the same sums (without fused multiply-adds, so the last bits may differ).

use std::sync::Arc;

use half::f16;
use rayon::prelude::*;

use super::weight_region::{RegionLayout, WeightRegion};

/// Output columns per strip: two 8-lane registers.
pub const STRIP: usize = 16;
/// Rows per register tile with AVX2 (two accumulators per row, twelve registers at six).
const MAX_TILE: usize = 6;
/// Rows per register tile with AVX-512 (one 16-lane accumulator per row, of 32 registers): a
/// 7-token query is one tile, so each strip is read once and every multiply-add has an
/// independent accumulator to go to.
const MAX_TILE_512: usize = 12;
/// The most rows [`SmallGemm::forward`] is meant for. On all-MiniLM-L6-v2's four shapes, 2 threads,
/// weights out of cache, a quiet machine: the kernel took 0.59–0.77 of gemm's time per layer from 4
/// to 32 rows and 1.05–1.31 from 48 to 128, where gemm's reuse of each weight across rows wins
/// (`small_gemm_bench`, docs/benchmarks.md, "Past 16 rows").
pub const MAX_ROWS: usize = 32;
/// Below this many multiply-adds a call runs on the calling thread.
const SERIAL_WORK: usize = 1 << 16;

/// How the packed weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The checkpoint's f32 values.
    F32,
    /// Rounded to f16 (to nearest) at load, widened back to f32 in the kernel.
    F16,
}

#[derive(Debug, Clone)]
enum Packed {
    F32(Store<f32>),
    F16(Store<f16>),
}

/// Where packed weights live: their own allocation, or a slice of a model's shared region
/// ([`SmallGemm::use_region`]).
#[derive(Debug, Clone)]
enum Store<T> {
    Own(Vec<T>),
    /// `len` values at byte `offset` of `region`.
    Region {
        region: Arc<WeightRegion>,
        offset: usize,
        len: usize,
    },
}

impl<T: Copy> Store<T> {
    fn get(&self) -> &[T] {
        match self {
            Store::Own(v) => v,
            // SAFETY: `use_region` stores an offset only after `write_weights` wrote `len` values
            // of this `T` there.
            Store::Region {
                region,
                offset,
                len,
            } => unsafe { region.slice(*offset, *len) },
        }
    }

    fn move_to_region(&mut self, region: &Arc<WeightRegion>, offset: usize) {
        *self = Store::Region {
            region: region.clone(),
            offset,
            len: self.get().len(),
        };
    }
}

/// A dense layer's weight and bias, packed for [`SmallGemm::forward`].
#[derive(Debug, Clone)]
pub struct SmallGemm {
    in_dim: usize,
    out_dim: usize,
    strips: usize,
    /// `strips × in × STRIP`.
    w: Packed,
    /// `strips × STRIP`, zero past `out_dim`.
    bias: Vec<f32>,
}

impl SmallGemm {
    /// Packs `w_t` (`[in, out]`, row-major) and `bias` (`[out]`).
    pub fn pack(
        w_t: &[f32],
        bias: &[f32],
        in_dim: usize,
        out_dim: usize,
        precision: Precision,
    ) -> Self {
        assert_eq!(w_t.len(), in_dim * out_dim, "weight is not [in, out]");
        assert_eq!(bias.len(), out_dim, "bias is not [out]");
        let strips = out_dim.div_ceil(STRIP);
        let mut packed = vec![0f32; strips * in_dim * STRIP];
        for (s, strip) in packed.chunks_mut((in_dim * STRIP).max(1)).enumerate() {
            let c0 = s * STRIP;
            let width = STRIP.min(out_dim - c0);
            for k in 0..in_dim {
                strip[k * STRIP..k * STRIP + width]
                    .copy_from_slice(&w_t[k * out_dim + c0..k * out_dim + c0 + width]);
            }
        }
        let mut b = vec![0f32; strips * STRIP];
        b[..out_dim].copy_from_slice(bias);
        let w = match precision {
            Precision::F32 => Packed::F32(Store::Own(packed)),
            Precision::F16 => Packed::F16(Store::Own(
                packed.iter().map(|&v| f16::from_f32(v)).collect(),
            )),
        };
        SmallGemm {
            in_dim,
            out_dim,
            strips,
            w,
            bias: b,
        }
    }

    pub fn precision(&self) -> Precision {
        match self.w {
            Packed::F32(_) => Precision::F32,
            Packed::F16(_) => Precision::F16,
        }
    }

    /// The weight as the kernel sees it (f16 values widened), `[in, out]` row-major: what the
    /// other paths must multiply by to compute the same function.
    pub fn unpacked_weight(&self) -> Vec<f32> {
        let (i_n, o_n) = (self.in_dim, self.out_dim);
        let widened: Vec<f32> = match &self.w {
            Packed::F32(p) => p.get().to_vec(),
            Packed::F16(p) => p.get().iter().map(|v| v.to_f32()).collect(),
        };
        let mut w = vec![0f32; i_n * o_n];
        for k in 0..i_n {
            for j in 0..o_n {
                w[k * o_n + j] = widened[(j / STRIP) * i_n * STRIP + k * STRIP + j % STRIP];
            }
        }
        w
    }

    /// Moves the packed weights of `kernels` into one new [`WeightRegion`] (advised for huge
    /// pages) and frees their own copies; each then reads its weights from the region.
    pub fn share_weights(kernels: &mut [&mut SmallGemm]) -> std::io::Result<()> {
        if kernels.is_empty() {
            return Ok(());
        }
        let mut layout = RegionLayout::default();
        let offsets: Vec<usize> = kernels
            .iter()
            .map(|k| layout.place(k.weight_bytes()))
            .collect();
        let mut region = WeightRegion::new(layout.bytes())?;
        for (k, &at) in kernels.iter().zip(&offsets) {
            k.write_weights(&mut region, at);
        }
        let region = Arc::new(region);
        for (k, at) in kernels.iter_mut().zip(offsets) {
            k.use_region(&region, at);
        }
        Ok(())
    }

    /// Bytes of the packed weights (what [`SmallGemm::write_weights`] writes).
    fn weight_bytes(&self) -> usize {
        match &self.w {
            Packed::F32(p) => std::mem::size_of_val(p.get()),
            Packed::F16(p) => std::mem::size_of_val(p.get()),
        }
    }

    /// Copies the packed weights into `region` at byte `offset`.
    fn write_weights(&self, region: &mut WeightRegion, offset: usize) {
        match &self.w {
            Packed::F32(p) => region.write(offset, p.get()),
            Packed::F16(p) => region.write(offset, p.get()),
        }
    }

    /// Reads the weights from `region` from now on, where [`SmallGemm::write_weights`] put them at
    /// `offset`, and frees its own copy.
    fn use_region(&mut self, region: &Arc<WeightRegion>, offset: usize) {
        match &mut self.w {
            Packed::F32(p) => p.move_to_region(region, offset),
            Packed::F16(p) => p.move_to_region(region, offset),
        }
    }

    /// The address of the region the weights are read from, if they were moved to one.
    #[cfg(test)]
    pub(crate) fn region_id(&self) -> Option<usize> {
        fn id<T>(s: &Store<T>) -> Option<usize> {
            match s {
                Store::Region { region, .. } => Some(Arc::as_ptr(region) as usize),
                Store::Own(_) => None,
            }
        }
        match &self.w {
            Packed::F32(p) => id(p),
            Packed::F16(p) => id(p),
        }
    }

    /// `x` (`rows × in`, row-major) → `rows × out`. Meant for `rows ≤ MAX_ROWS`; correct for any.
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        self.forward_on(Kernel::pick(self.precision()), x, rows)
    }

    /// [`SmallGemm::forward`] with a given strip code (the tests compare them).
    fn forward_on(&self, kernel: Kernel, x: &[f32], rows: usize) -> Vec<f32> {
        let (in_dim, out_dim) = (self.in_dim, self.out_dim);
        assert_eq!(x.len(), rows * in_dim, "x is not [rows, in]");
        if rows == 0 || out_dim == 0 {
            return Vec::new();
        }
        // Strip-major result (`strips × rows × STRIP`), so that tasks write disjoint chunks.
        let mut by_strip = vec![0f32; self.strips * rows * STRIP];
        let chunk = rows * STRIP;
        let run = |s0: usize, out: &mut [f32]| {
            for (i, out) in out.chunks_mut(chunk).enumerate() {
                self.strip(kernel, s0 + i, x, rows, out);
            }
        };
        let work = rows * in_dim * out_dim;
        let threads = rayon::current_num_threads();
        if work < SERIAL_WORK || threads < 2 || self.strips < 2 {
            run(0, &mut by_strip);
        } else {
            // A few tasks per thread so that a busy core does not hold the others up.
            let per_task = self.strips.div_ceil(threads * 4).max(1);
            by_strip
                .par_chunks_mut(per_task * chunk)
                .enumerate()
                .for_each(|(t, out)| run(t * per_task, out));
        }
        // Row-major, appended in order (no zeroing first).
        let mut y = Vec::with_capacity(rows * out_dim);
        for r in 0..rows {
            for (s, block) in by_strip.chunks(chunk).enumerate() {
                let width = STRIP.min(out_dim - s * STRIP);
                y.extend_from_slice(&block[r * STRIP..r * STRIP + width]);
            }
        }
        y
    }

    /// Strip `s` for all rows, in register tiles of balanced sizes (7 rows: 4 + 3).
    fn strip(&self, kernel: Kernel, s: usize, x: &[f32], rows: usize, out: &mut [f32]) {
        let in_dim = self.in_dim;
        let bias: &[f32; STRIP] = self.bias[s * STRIP..(s + 1) * STRIP].try_into().unwrap();
        let tiles = rows.div_ceil(kernel.max_tile());
        let mut r0 = 0;
        for t in 0..tiles {
            // Spread the rows evenly: the first `rows % tiles` tiles take one more.
            let mr = rows / tiles + usize::from(t < rows % tiles);
            let xs = &x[r0 * in_dim..(r0 + mr) * in_dim];
            let out = &mut out[r0 * STRIP..(r0 + mr) * STRIP];
            let span = s * in_dim * STRIP..(s + 1) * in_dim * STRIP;
            match (&self.w, kernel) {
                #[cfg(target_arch = "x86_64")]
                (Packed::F32(w), Kernel::Avx512) => {
                    // SAFETY: `Kernel::pick` chose Avx512 only where AVX-512F is present; the
                    // slices have the lengths `x86::tile512` reads (checked there).
                    unsafe { x86::tile512_f32(mr, xs, in_dim, &w.get()[span], bias, out) }
                }
                #[cfg(target_arch = "x86_64")]
                (Packed::F16(w), Kernel::Avx512) => {
                    // SAFETY: as above (AVX-512F includes the 16-lane f16 conversion).
                    unsafe { x86::tile512_f16(mr, xs, in_dim, &w.get()[span], bias, out) }
                }
                #[cfg(target_arch = "x86_64")]
                (Packed::F32(w), Kernel::Avx2) => {
                    // SAFETY: `Kernel::pick` chose Avx2 only where AVX2 and FMA are present; the
                    // slices have the lengths `x86::tile` reads (checked there).
                    unsafe { x86::tile_f32(mr, xs, in_dim, &w.get()[span], bias, out) }
                }
                #[cfg(target_arch = "x86_64")]
                (Packed::F16(w), Kernel::Avx2) => {
                    // SAFETY: as above, with F16C also checked by `Kernel::pick`.
                    unsafe { x86::tile_f16(mr, xs, in_dim, &w.get()[span], bias, out) }
                }
                (Packed::F32(w), _) => portable_tile(mr, xs, in_dim, &w.get()[span], bias, out),
                (Packed::F16(w), _) => {
                    let wide: Vec<f32> = w.get()[span].iter().map(|v| v.to_f32()).collect();
                    portable_tile(mr, xs, in_dim, &wide, bias, out)
                }
            }
            r0 += mr;
        }
    }
}

/// Which strip code runs: chosen once per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Kernel {
    fn pick(precision: Precision) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            // std caches the CPUID result; these are loads and tests after the first call.
            let f16_ok = precision == Precision::F32 || std::arch::is_x86_feature_detected!("f16c");
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && f16_ok
            {
                return Kernel::Avx2;
            }
        }
        let _ = precision;
        Kernel::Portable
    }

    fn max_tile(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => MAX_TILE_512,
            _ => MAX_TILE,
        }
    }
}

/// One tile of `mr` rows over one strip, without SIMD intrinsics (the compiler vectorises the
/// 16-lane inner loop). `w` is the strip, `in × STRIP`.
fn portable_tile(
    mr: usize,
    x: &[f32],
    in_dim: usize,
    w: &[f32],
    bias: &[f32; STRIP],
    out: &mut [f32],
) {
    for r in 0..mr {
        let xr = &x[r * in_dim..(r + 1) * in_dim];
        let mut acc = *bias;
        for (k, &xv) in xr.iter().enumerate() {
            let wk: &[f32; STRIP] = w[k * STRIP..(k + 1) * STRIP].try_into().unwrap();
            for (a, &w) in acc.iter_mut().zip(wk) {
                *a += xv * w;
            }
        }
        out[r * STRIP..(r + 1) * STRIP].copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX2 + FMA (+ F16C) strips. Every function requires those features; `Kernel::pick`
    //! checks them before any call.

    use std::arch::x86_64::*;

    use half::f16;

    use super::STRIP;

    /// Loads the 16 weights of strip row `k` as two 8-lane f32 registers.
    trait Weights {
        /// # Safety
        /// `p.add(k * STRIP + 16)` must be in bounds; the CPU must have the features of the tile.
        unsafe fn load(p: *const Self, k: usize) -> (__m256, __m256);
    }

    impl Weights for f32 {
        #[inline(always)]
        unsafe fn load(p: *const f32, k: usize) -> (__m256, __m256) {
            let p = p.add(k * STRIP);
            (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        }
    }

    impl Weights for f16 {
        #[inline(always)]
        unsafe fn load(p: *const f16, k: usize) -> (__m256, __m256) {
            let p = p.add(k * STRIP) as *const __m128i;
            (
                _mm256_cvtph_ps(_mm_loadu_si128(p)),
                _mm256_cvtph_ps(_mm_loadu_si128(p.add(1))),
            )
        }
    }

    /// `MR` rows: two accumulators each, started at the bias, one FMA per weight and row in the
    /// order of `k`.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // registers indexed by row, as in the kernel's math
    unsafe fn tile<W: Weights, const MR: usize>(
        x: *const f32,
        in_dim: usize,
        w: *const W,
        bias: &[f32; STRIP],
        out: *mut f32,
    ) {
        let b0 = _mm256_loadu_ps(bias.as_ptr());
        let b1 = _mm256_loadu_ps(bias.as_ptr().add(8));
        let mut lo = [b0; MR];
        let mut hi = [b1; MR];
        for k in 0..in_dim {
            let (w0, w1) = W::load(w, k);
            for r in 0..MR {
                let xv = _mm256_set1_ps(*x.add(r * in_dim + k));
                lo[r] = _mm256_fmadd_ps(xv, w0, lo[r]);
                hi[r] = _mm256_fmadd_ps(xv, w1, hi[r]);
            }
        }
        for r in 0..MR {
            _mm256_storeu_ps(out.add(r * STRIP), lo[r]);
            _mm256_storeu_ps(out.add(r * STRIP + 8), hi[r]);
        }
    }

    /// A tile function for run-time row counts: `$tile::<$w, MR>` for each `MR` listed.
    macro_rules! dispatch {
        ($name:ident, $w:ty, $features:literal, $tile:ident, $max:path, [$($mr:literal),*]) => {
            /// # Safety
            /// The CPU must have the features named in `target_feature`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(
                mr: usize,
                x: &[f32],
                in_dim: usize,
                w: &[$w],
                bias: &[f32; STRIP],
                out: &mut [f32],
            ) {
                assert!(x.len() >= mr * in_dim && w.len() >= in_dim * STRIP);
                assert!(out.len() >= mr * STRIP);
                let (x, w, out) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
                match mr {
                    $($mr => $tile::<$w, $mr>(x, in_dim, w, bias, out),)*
                    _ => unreachable!("tiles hold 1 to {} rows", $max),
                }
            }
        };
    }

    dispatch!(
        tile_f32,
        f32,
        "avx2,fma",
        tile,
        super::MAX_TILE,
        [1, 2, 3, 4, 5, 6]
    );
    dispatch!(
        tile_f16,
        f16,
        "avx2,fma,f16c",
        tile,
        super::MAX_TILE,
        [1, 2, 3, 4, 5, 6]
    );

    /// Loads the 16 weights of strip row `k` as one 16-lane f32 register.
    trait Weights512 {
        /// # Safety
        /// `p.add(k * STRIP + 16)` must be in bounds; the CPU must have AVX-512F.
        unsafe fn load16(p: *const Self, k: usize) -> __m512;
    }

    impl Weights512 for f32 {
        #[inline(always)]
        unsafe fn load16(p: *const f32, k: usize) -> __m512 {
            _mm512_loadu_ps(p.add(k * STRIP))
        }
    }

    impl Weights512 for f16 {
        #[inline(always)]
        unsafe fn load16(p: *const f16, k: usize) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p.add(k * STRIP) as *const __m256i))
        }
    }

    /// `MR` rows, one accumulator each, started at the bias: per lane the same fused multiply-adds
    /// in the same order as [`tile`], so the same bits.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // registers indexed by row, as in the kernel's math
    unsafe fn tile16<W: Weights512, const MR: usize>(
        x: *const f32,
        in_dim: usize,
        w: *const W,
        bias: &[f32; STRIP],
        out: *mut f32,
    ) {
        let mut acc = [_mm512_loadu_ps(bias.as_ptr()); MR];
        for k in 0..in_dim {
            let wk = W::load16(w, k);
            for r in 0..MR {
                let xv = _mm512_set1_ps(*x.add(r * in_dim + k));
                acc[r] = _mm512_fmadd_ps(xv, wk, acc[r]);
            }
        }
        for r in 0..MR {
            _mm512_storeu_ps(out.add(r * STRIP), acc[r]);
        }
    }

    dispatch!(
        tile512_f32,
        f32,
        "avx512f",
        tile16,
        super::MAX_TILE_512,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
    dispatch!(
        tile512_f16,
        f16,
        "avx512f",
        tile16,
        super::MAX_TILE_512,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::pseudo_random as values;

    /// The textbook triple loop, in f64.
    fn reference(x: &[f32], w: &[f32], b: &[f32], rows: usize, i_n: usize, o_n: usize) -> Vec<f32> {
        let mut y = vec![0f32; rows * o_n];
        for r in 0..rows {
            for j in 0..o_n {
                let mut s = b[j] as f64;
                for k in 0..i_n {
                    s += x[r * i_n + k] as f64 * w[k * o_n + j] as f64;
                }
                y[r * o_n + j] = s as f32;
            }
        }
        y
    }

    fn check(rows: usize, i_n: usize, o_n: usize, precision: Precision, tol: f32) {
        let x = values(rows * i_n, 1 + rows as u64);
        let w = values(i_n * o_n, 1000 + i_n as u64);
        let b = values(o_n, 7 + o_n as u64);
        let g = SmallGemm::pack(&w, &b, i_n, o_n, precision);
        let got = g.forward(&x, rows);
        // f16 weights: the function computed is the one of the rounded weights.
        let want = reference(&x, &g.unpacked_weight(), &b, rows, i_n, o_n);
        assert_eq!(got.len(), want.len());
        for (i, (a, e)) in got.iter().zip(&want).enumerate() {
            let (r, j) = (i / o_n, i % o_n);
            assert!(
                (a - e).abs() <= tol * (1.0 + e.abs()),
                "rows {rows}, in {i_n}, out {o_n}, {precision:?}: y[{r}][{j}] = {a}, want {e}"
            );
        }
    }

    #[test]
    fn matches_the_triple_loop_for_every_row_count_and_odd_sizes() {
        for rows in 1..=MAX_ROWS {
            for (i_n, o_n) in [
                (1, 1),
                (3, 5),
                (7, 17),
                (13, 33),
                (37, 15),
                (64, 48),
                (29, 70),
                (293, 40),
            ] {
                check(rows, i_n, o_n, Precision::F32, 1e-5);
                check(rows, i_n, o_n, Precision::F16, 1e-5);
            }
        }
    }

    #[test]
    fn large_enough_to_run_on_the_pool() {
        // 7 × 390 × 1157 multiply-adds: past SERIAL_WORK, so the strips are split into tasks.
        const { assert!(7 * 390 * 1157 >= SERIAL_WORK) };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            check(7, 390, 1157, Precision::F32, 1e-5);
            check(7, 390, 1157, Precision::F16, 1e-5);
            check(16, 390, 1157, Precision::F32, 1e-5);
            check(MAX_ROWS - 1, 390, 1157, Precision::F32, 1e-5);
        });
    }

    /// Each row's sums are taken in the same order whatever tile it falls in, so a row computed
    /// alone has the bits it has among others (a text alone equals its row in a batch).
    #[test]
    fn a_row_alone_has_the_bits_it_has_among_others() {
        let (i_n, o_n) = (293, 45);
        let w = values(i_n * o_n, 11);
        let b = values(o_n, 12);
        for precision in [Precision::F32, Precision::F16] {
            let g = SmallGemm::pack(&w, &b, i_n, o_n, precision);
            for rows in [7, 23, MAX_ROWS] {
                let x = values(rows * i_n, 13 + rows as u64);
                let all = g.forward(&x, rows);
                for r in [0, rows / 2, rows - 1] {
                    let alone = g.forward(&x[r * i_n..(r + 1) * i_n], 1);
                    assert_eq!(
                        alone,
                        all[r * o_n..(r + 1) * o_n],
                        "{precision:?}, row {r} of {rows}"
                    );
                }
            }
        }
    }

    /// The AVX-512 strips (one pass for up to 12 rows) and the AVX2 ones (tiles of up to 6) take
    /// the same multiply-adds per lane in the same order: a machine returns the same bits whichever
    /// it has.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_and_avx2_strips_return_the_same_bits() {
        let all = ["avx512f", "avx2", "fma", "f16c"];
        if !(std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c"))
        {
            eprintln!("skipped: this CPU lacks one of {all:?}");
            return;
        }
        let (i_n, o_n) = (293, 45);
        let w = values(i_n * o_n, 21);
        let b = values(o_n, 22);
        for precision in [Precision::F32, Precision::F16] {
            let g = SmallGemm::pack(&w, &b, i_n, o_n, precision);
            assert_eq!(Kernel::pick(precision), Kernel::Avx512);
            for rows in 1..=MAX_ROWS {
                let x = values(rows * i_n, 23 + rows as u64);
                assert_eq!(
                    g.forward_on(Kernel::Avx512, &x, rows),
                    g.forward_on(Kernel::Avx2, &x, rows),
                    "{precision:?}, {rows} rows"
                );
            }
        }
    }

    /// Weights moved into a shared region give the same bits as in their own allocation.
    #[test]
    fn weights_in_a_shared_region_compute_the_same_bits() {
        let shapes = [(37, 45), (293, 16), (5, 3)];
        let mut kernels: Vec<SmallGemm> = shapes
            .iter()
            .enumerate()
            .flat_map(|(i, &(i_n, o_n))| {
                let w = values(i_n * o_n, 40 + i as u64);
                let b = values(o_n, 50 + i as u64);
                [Precision::F32, Precision::F16].map(|p| SmallGemm::pack(&w, &b, i_n, o_n, p))
            })
            .collect();
        let x = |k: &SmallGemm| values(7 * k.in_dim, 60 + k.in_dim as u64);
        let before: Vec<Vec<f32>> = kernels.iter().map(|k| k.forward(&x(k), 7)).collect();
        assert!(kernels.iter().all(|k| k.region_id().is_none()));
        SmallGemm::share_weights(&mut kernels.iter_mut().collect::<Vec<_>>()).unwrap();
        let region = kernels[0].region_id();
        assert!(region.is_some());
        assert!(kernels.iter().all(|k| k.region_id() == region));
        for (k, want) in kernels.iter().zip(&before) {
            assert_eq!(&k.forward(&x(k), 7), want);
        }
    }

    #[test]
    fn more_rows_than_meant_for_still_compute_the_product() {
        check(MAX_ROWS + 3, 21, 19, Precision::F32, 1e-5);
    }

    #[test]
    fn the_portable_tile_agrees_with_the_dispatched_one() {
        let (rows, i_n, o_n) = (5, 45, 37);
        let x = values(rows * i_n, 3);
        let w = values(i_n * o_n, 4);
        let b = values(o_n, 5);
        let g = SmallGemm::pack(&w, &b, i_n, o_n, Precision::F32);
        let fast = g.forward(&x, rows);
        let Packed::F32(p) = &g.w else { unreachable!() };
        let p = p.get();
        for s in 0..g.strips {
            let mut out = vec![0f32; rows * STRIP];
            let bias: &[f32; STRIP] = g.bias[s * STRIP..(s + 1) * STRIP].try_into().unwrap();
            portable_tile(
                rows,
                &x,
                i_n,
                &p[s * i_n * STRIP..(s + 1) * i_n * STRIP],
                bias,
                &mut out,
            );
            for r in 0..rows {
                for c in 0..STRIP.min(o_n - s * STRIP) {
                    let (a, e) = (out[r * STRIP + c], fast[r * o_n + s * STRIP + c]);
                    assert!(
                        (a - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "[{r}][{}]",
                        s * STRIP + c
                    );
                }
            }
        }
    }

    #[test]
    fn f16_weights_are_the_rounded_weights() {
        let w = [1.0f32 / 3.0, 65504.0, 1e-8, -2.5];
        let g = SmallGemm::pack(&w, &[0.0; 2], 2, 2, Precision::F16);
        let u = g.unpacked_weight();
        for (a, e) in u.iter().zip(w) {
            assert_eq!(*a, f16::from_f32(e).to_f32());
        }
        assert_ne!(u[0], w[0], "1/3 is not an f16 value");
        let f = SmallGemm::pack(&w, &[0.0; 2], 2, 2, Precision::F32);
        assert_eq!(f.unpacked_weight(), w);
    }
}
