//! Codes against the rows they encode, and the codes file's round trip and checks.

use quiver_storage::segment::Residency;
use rand::{Rng, SeedableRng};

use super::*;
use crate::config::Distance;
use crate::index::{RowScorer, VectorSlab};

fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * dim)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

#[test]
fn scalar_codes_decode_within_half_a_step_and_estimate_dot_and_l2() {
    let dim = 37;
    let data = rows(500, dim, 1);
    let slab = VectorSlab { data: &data, dim };
    // Quantile 1: the whole range is covered, so every value decodes within half a step.
    let codes = scalar::ScalarCodes::build(slab, 1.0);
    assert!((codes.offset - data.iter().copied().fold(f32::MAX, f32::min)).abs() < 1e-6);
    for r in [0usize, 17, 499] {
        for (x, y) in slab.row(r as u32).iter().zip(codes.decode(r)) {
            assert!((x - y).abs() <= codes.alpha / 2.0 + 1e-6, "{x} {y}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let built = Codes::Scalar(codes.clone());
    write_codes(&path, &built).unwrap();
    for residency in [Residency::Mapped, Residency::InMemory] {
        let file = CodesFile::open_as(&path, residency).unwrap();
        assert_eq!(file.len(), 500);
        let q: Vec<f32> = rows(1, dim, 9);
        for distance in [Distance::Dot, Distance::Euclid] {
            let scorer = file.scorer(distance, &q);
            for r in 0..50u32 {
                let exact = crate::distance::score(distance, &q, slab.row(r));
                let est = scorer.key_to_score(scorer.key(r));
                // Error of dim products of values each off by at most half a step.
                assert!(
                    (est - exact).abs() < 0.08,
                    "{distance:?} row {r}: {est} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn binary_codes_round_trip_and_count_differing_bits() {
    let dim = 130;
    let data = rows(64, dim, 2);
    let slab = VectorSlab { data: &data, dim };
    let codes = binary::BinaryCodes::build(slab);
    assert_eq!(codes.words.len(), 64 * 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    write_codes(&path, &Codes::Binary(codes.clone())).unwrap();
    let file = CodesFile::open_as(&path, Residency::Mapped).unwrap();
    // A row against itself differs nowhere; against another, where its bits differ.
    let scorer = file.scorer(Distance::Cosine, slab.row(5));
    assert_eq!(scorer.key(5), 0.0);
    let differing = (0..dim)
        .filter(|&d| {
            (slab.row(5)[d] > codes.thresholds[d]) != (slab.row(9)[d] > codes.thresholds[d])
        })
        .count();
    assert_eq!(scorer.key(9), differing as f32);
    assert_eq!(scorer.key_to_score(0.0), 1.0);
}

#[test]
fn damaged_codes_files_are_refused_naming_the_file() {
    let dim = 8;
    let data = rows(10, dim, 3);
    let codes = build_codes(
        &QuantizationConfig::Scalar(ScalarQuantization {
            kind: ScalarType::Int8,
            quantile: None,
            always_ram: None,
        }),
        VectorSlab { data: &data, dim },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.q");
    write_codes(&path, &codes).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let err = CodesFile::open_as(&path, Residency::Mapped).unwrap_err();
    assert!(err.to_string().contains("codes.q"), "{err}");
    let mut bad_kind = bytes.clone();
    bad_kind[16] = 9;
    std::fs::write(&path, &bad_kind).unwrap();
    let err = CodesFile::open_as(&path, Residency::Mapped).unwrap_err();
    assert!(err.to_string().contains("kind 9"), "{err}");
}
