//! Fusion of ranked hit lists, as Qdrant computes it: reciprocal rank fusion over positions, and
//! distribution-based score fusion over normalised scores. Each list is best first; the fused list
//! is ordered by fused score (higher first), ties by id.

use std::collections::HashMap;

use quiver_storage::PointId;

use crate::query::Fusion;
use crate::{Error, Result};

/// One prefetch's hits, best first, with whether its scores are better when higher.
pub(crate) struct Ranked {
    pub hits: Vec<(PointId, f32)>,
    pub higher_is_better: bool,
}

/// The fused scores of every point that appears in any list.
pub(crate) fn fuse(fusion: &Fusion, lists: Vec<Ranked>) -> Result<Vec<(PointId, f32)>> {
    let mut scores: HashMap<PointId, f32> = HashMap::new();
    match fusion {
        Fusion::Rrf { k, weights } => {
            if *k == 0 {
                return Err(Error::InvalidInput("rrf.k must be at least 1".into()));
            }
            if let Some(w) = weights {
                if w.len() != lists.len() {
                    return Err(Error::InvalidInput(format!(
                        "rrf.weights has {} weights for {} prefetches: give one per prefetch",
                        w.len(),
                        lists.len()
                    )));
                }
                if w.iter().any(|x| !x.is_finite() || *x < 0.0) {
                    return Err(Error::InvalidInput(
                        "rrf.weights must be finite and not negative".into(),
                    ));
                }
            }
            for (i, list) in lists.iter().enumerate() {
                let weight = weights.as_ref().map_or(1.0, |w| w[i]);
                for (pos, (id, _)) in list.hits.iter().enumerate() {
                    *scores.entry(*id).or_insert(0.0) += rrf_score(pos, *k, weight);
                }
            }
        }
        Fusion::Dbsf => {
            for list in &lists {
                // A distance (lower is better) is turned around so that every list ranks upwards.
                let sign = if list.higher_is_better { 1.0 } else { -1.0 };
                let raw: Vec<f32> = list.hits.iter().map(|h| sign * h.1).collect();
                for ((id, _), s) in list.hits.iter().zip(distribution_normalised(&raw)) {
                    *scores.entry(*id).or_insert(0.0) += s;
                }
            }
        }
    }
    let mut out: Vec<(PointId, f32)> = scores.into_iter().collect();
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

fn rrf_score(position: usize, k: usize, weight: f32) -> f32 {
    if weight <= 0.0 {
        return 0.0;
    }
    1.0 / ((position + 1) as f32 / weight + k as f32 - 1.0)
}

/// Scores mapped linearly from [mean − 3σ, mean + 3σ] to [0, 1] (not clamped, as in Qdrant);
/// a single score is 0.5, and so is every score of a list whose scores are all equal.
fn distribution_normalised(scores: &[f32]) -> Vec<f32> {
    if scores.len() < 2 {
        return vec![0.5; scores.len()];
    }
    // Welford's one-pass mean and variance.
    let (mut mean, mut m2) = (0.0f32, 0.0f32);
    for (i, &s) in scores.iter().enumerate() {
        let delta = s - mean;
        mean += delta / (i + 1) as f32;
        m2 += delta * (s - mean);
    }
    let std_dev = (m2 / (scores.len() - 1) as f32).sqrt();
    let (low, high) = (mean - 3.0 * std_dev, mean + 3.0 * std_dev);
    if low == high {
        return vec![0.5; scores.len()];
    }
    scores.iter().map(|s| (s - low) / (high - low)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[u64]) -> Ranked {
        Ranked {
            hits: ids
                .iter()
                .map(|&i| (PointId::Num(i), 1.0 / (i as f32 + 1.0)))
                .collect(),
            higher_is_better: true,
        }
    }

    fn rrf(k: usize) -> Fusion {
        Fusion::Rrf { k, weights: None }
    }

    #[test]
    fn rrf_matches_qdrants_worked_example() {
        // Qdrant's own test: three lists, k = 2.
        let fused = fuse(
            &rrf(2),
            vec![list(&[2, 1]), list(&[1, 2, 3]), list(&[5, 3, 1])],
        )
        .unwrap();
        let want = [
            (1, 1.083_333_4),
            (2, 0.833_333_4),
            (3, 0.583_333_4),
            (5, 0.5),
        ];
        assert_eq!(fused.len(), 4);
        for ((id, score), (wid, wscore)) in fused.iter().zip(want) {
            assert_eq!(*id, PointId::Num(wid));
            assert!((score - wscore).abs() < 1e-6, "{score} {wscore}");
        }
    }

    #[test]
    fn rrf_weights_and_k_are_checked_and_applied() {
        assert!(fuse(&rrf(0), vec![list(&[1])]).is_err());
        let weighted = |w: Vec<f32>| Fusion::Rrf {
            k: 2,
            weights: Some(w),
        };
        assert!(fuse(&weighted(vec![1.0]), vec![list(&[1]), list(&[2])]).is_err());
        let fused = fuse(
            &weighted(vec![3.0, 1.0]),
            vec![list(&[1, 2]), list(&[2, 1])],
        )
        .unwrap();
        assert_eq!(fused[0].0, PointId::Num(2));
        let zero = fuse(&weighted(vec![1.0, 0.0]), vec![list(&[1]), list(&[2])]).unwrap();
        assert_eq!(zero, vec![(PointId::Num(1), 0.5), (PointId::Num(2), 0.0)]);
    }

    #[test]
    fn dbsf_normalises_each_list_and_turns_distances_around() {
        let scores = [1.0f32, 2.0, 3.0];
        let n = distribution_normalised(&scores);
        // mean 2, sample σ 1: [−1, 5] maps to [0, 1].
        for (got, want) in n.iter().zip([1.0 / 3.0, 0.5, 2.0 / 3.0]) {
            assert!((got - want).abs() < 1e-6, "{n:?}");
        }
        assert_eq!(distribution_normalised(&[7.0]), vec![0.5]);
        assert_eq!(distribution_normalised(&[7.0, 7.0]), vec![0.5, 0.5]);
        let distances = Ranked {
            hits: vec![(PointId::Num(1), 0.1), (PointId::Num(2), 5.0)],
            higher_is_better: false,
        };
        let fused = fuse(&Fusion::Dbsf, vec![distances]).unwrap();
        assert_eq!(fused[0].0, PointId::Num(1));
        assert!(fused[0].1 > fused[1].1);
    }
}
