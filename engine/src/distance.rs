//! Distances as Qdrant reports them: which score a metric gives, which of two scores ranks first, and
//! the lower-is-better keys the indexes order by. The arithmetic is in [`crate::kernels`].

use crate::config::Distance;
pub use crate::kernels::{dot, dot_portable, l2_squared, max_sim, normalize};

/// The score Qdrant reports: similarity for Cosine (inputs already unit length) and Dot, distance for Euclid.
#[inline]
pub fn score(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => dot(a, b),
        Distance::Euclid => l2_squared(a, b).sqrt(),
    }
}

/// True when score `a` ranks before score `b` under this distance.
pub fn is_better(distance: Distance, a: f32, b: f32) -> bool {
    if distance.higher_is_better() {
        a > b
    } else {
        a < b
    }
}

/// Lower-is-better key used inside the indexes: `-dot` for similarities, squared L2 for Euclid (its
/// square root is taken only for reported scores).
#[inline]
pub(crate) fn order_key(distance: Distance, a: &[f32], b: &[f32]) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => -dot(a, b),
        Distance::Euclid => l2_squared(a, b),
    }
}

/// Turns an [`order_key`] back into the score Qdrant reports.
#[inline]
pub(crate) fn key_to_score(distance: Distance, key: f32) -> f32 {
    match distance {
        Distance::Cosine | Distance::Dot => -key,
        Distance::Euclid => key.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_qdrant_conventions() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        assert_eq!(score(Distance::Cosine, &a, &a), 1.0);
        assert_eq!(score(Distance::Dot, &[2.0, 0.0], &a), 2.0);
        assert!((score(Distance::Euclid, &a, &b) - 2f32.sqrt()).abs() < 1e-7);
        assert!(is_better(Distance::Cosine, 0.9, 0.1));
        assert!(is_better(Distance::Euclid, 0.1, 0.9));
        for d in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
            let k = order_key(d, &a, &b);
            assert_eq!(key_to_score(d, k), score(d, &a, &b));
        }
    }
}
