//! Distance kernels. The one place vectors are normalised and scored.

use crate::config::Distance;

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let _ = (a, b);
    todo!()
}

/// Squared Euclidean distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let _ = (a, b);
    todo!()
}

/// Scales `v` to unit length in place. Returns false (and leaves `v` unchanged) for a zero vector.
pub fn normalize(v: &mut [f32]) -> bool {
    let _ = v;
    todo!()
}

/// The score Qdrant reports: similarity for Cosine (inputs already unit length) and Dot, distance for Euclid.
pub fn score(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    let _ = (distance, a, b);
    todo!()
}

/// True when score `a` ranks before score `b` under this distance.
pub fn is_better(distance: Distance, a: f32, b: f32) -> bool {
    if distance.higher_is_better() {
        a > b
    } else {
        a < b
    }
}

/// MaxSim: for each query row, the best dot product against any document row, summed.
/// Rows are `dim`-strided in both slices.
pub fn max_sim(query: &[f32], doc: &[f32], dim: usize) -> f32 {
    let _ = (query, doc, dim);
    todo!()
}
