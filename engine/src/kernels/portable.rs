//! Portable kernels: 16 independent accumulators, so the compiler can keep them in vector registers
//! without reassociating float additions (which it may not do on its own).

/// Accumulator lanes.
const LANES: usize = 16;

/// Dot product.
// Indexing fixed-size lanes is what lets the compiler keep `acc` in vector registers.
#[allow(clippy::needless_range_loop)]
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    reduce(&acc) + tail
}

/// Squared Euclidean distance.
#[allow(clippy::needless_range_loop)]
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        tail += d * d;
    }
    reduce(&acc) + tail
}

/// Pairwise sum of the lanes, in a fixed order.
#[inline]
fn reduce(acc: &[f32; LANES]) -> f32 {
    let mut v = *acc;
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            v[i] += v[i + width];
        }
        width /= 2;
    }
    v[0]
}

/// `out[r] = rows[r] · x` for every `dim`-strided row of `rows`.
pub fn dot_rows(rows: &[f32], x: &[f32], dim: usize, out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = dot(row, x);
    }
}

/// See [`super::nearest_rows`].
pub fn nearest_rows(
    rows: &[f32],
    xs: &[f32],
    dim: usize,
    base: u32,
    best: &mut [f32],
    ids: &mut [u32],
) {
    for ((x, b), id) in xs
        .chunks_exact(dim)
        .zip(best.iter_mut())
        .zip(ids.iter_mut())
    {
        for (r, row) in rows.chunks_exact(dim).enumerate() {
            let s = dot(row, x);
            if s > *b {
                *b = s;
                *id = base + r as u32;
            }
        }
    }
}

/// See [`super::max_dots`].
pub fn max_dots(rows: &[f32], xs: &[f32], dim: usize, best: &mut [f32]) {
    for (x, b) in xs.chunks_exact(dim).zip(best.iter_mut()) {
        for row in rows.chunks_exact(dim) {
            *b = b.max(dot(row, x));
        }
    }
}
