use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};

use super::*;
use crate::config::Distance;
use crate::index::exact::exact_search;
use crate::index::{Candidate, VectorSlab};
use crate::kernels::normalize;
use crate::Error;

fn random_vectors(rows: usize, dim: usize, seed: u64, unit: bool) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data: Vec<f32> = (0..rows * dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    if unit {
        for row in data.chunks_exact_mut(dim) {
            normalize(row);
        }
    }
    data
}

fn params(deterministic: bool) -> HnswBuildParams {
    HnswBuildParams {
        m: 16,
        ef_construct: 100,
        deterministic,
        threads: 0,
    }
}

fn build_and_open(
    dir: &Path,
    slab: VectorSlab<'_>,
    distance: Distance,
    p: &HnswBuildParams,
) -> GraphView {
    let graph = build_graph(slab, distance, p, &AtomicBool::new(false)).unwrap();
    let path = dir.join("graph.bin");
    write_graph(&path, &graph).unwrap();
    GraphView::open(&path).unwrap()
}

fn recall_at(
    view: &GraphView,
    slab: VectorSlab<'_>,
    distance: Distance,
    queries: &[f32],
    k: usize,
    ef: usize,
    accept: &(dyn Fn(u32) -> bool + Sync),
) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for q in queries.chunks_exact(slab.dim) {
        let truth: HashSet<u32> = exact_search(slab, distance, q, k, accept)
            .iter()
            .map(|c| c.offset)
            .collect();
        let got = view.search(slab, distance, q, k, ef, accept);
        assert!(
            got.iter().all(|c| accept(c.offset)),
            "returned a rejected row"
        );
        hit += got.iter().filter(|c| truth.contains(&c.offset)).count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

#[test]
fn deterministic_builds_write_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_vectors(3000, 24, 1, true);
    let slab = VectorSlab {
        data: &data,
        dim: 24,
    };
    let mut files = Vec::new();
    for i in 0..2 {
        let graph = build_graph(
            slab,
            Distance::Cosine,
            &params(true),
            &AtomicBool::new(false),
        )
        .unwrap();
        let path = dir.path().join(format!("g{i}"));
        let written = write_graph(&path, &graph).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(written.size, bytes.len() as u64);
        assert_eq!(written.crc32, crc32fast::hash(&bytes));
        files.push(bytes);
    }
    assert_eq!(files[0], files[1]);
    GraphView::open(&dir.path().join("g0"))
        .unwrap()
        .verify_checksum()
        .unwrap();
}

#[test]
fn every_vector_finds_itself() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 16;
    let data = random_vectors(2000, dim, 2, true);
    let slab = VectorSlab { data: &data, dim };
    let view = build_and_open(dir.path(), slab, Distance::Cosine, &params(true));
    for o in 0..slab.len() as u32 {
        let got = view.search(slab, Distance::Cosine, slab.row(o), 1, 64, &|_| true);
        assert_eq!(got[0].offset, o, "row {o} did not find itself");
        assert!((got[0].score - 1.0).abs() < 1e-5);
    }
}

#[test]
fn written_graph_round_trips_through_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_vectors(1500, 8, 3, false);
    let slab = VectorSlab {
        data: &data,
        dim: 8,
    };
    let graph = build_graph(
        slab,
        Distance::Euclid,
        &params(true),
        &AtomicBool::new(false),
    )
    .unwrap();
    let path = dir.path().join("g");
    write_graph(&path, &graph).unwrap();
    let view = GraphView::open(&path).unwrap();
    assert_eq!(view.len(), graph.len());
    assert_eq!(view.max_level(), graph.max_level());
    assert!(
        graph.max_level() >= 1,
        "1500 nodes at m=16 should reach layer 1"
    );
    for layer in 0..=graph.max_level() {
        for node in 0..graph.len() as u32 {
            let want: Vec<u32> = graph.neighbours(layer, node).collect();
            let got: Vec<u32> = view
                .slots(layer, node)
                .iter()
                .map(|&x| u32::from_le(x))
                .take_while(|&x| x != NO_NODE)
                .collect();
            assert_eq!(got, want, "layer {layer} node {node}");
            assert!(want.len() <= if layer == 0 { 32 } else { 16 });
            assert!(!want.contains(&node));
        }
    }
}

/// recall@10 against exact search at the default parameters (m=16, ef_construct=100, ef=64).
fn check_recall(distance: Distance, unit: bool, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let dim = 32;
    let data = random_vectors(5_000, dim, seed, unit);
    let queries = random_vectors(100, dim, seed + 100, unit);
    let slab = VectorSlab { data: &data, dim };
    let view = build_and_open(dir.path(), slab, distance, &params(false));
    let recall = recall_at(&view, slab, distance, &queries, 10, 64, &|_| true);
    assert!(recall >= 0.95, "{distance:?}: recall@10 {recall}");

    // Half the rows pass the filter: results stay inside it and recall holds.
    let even = |o: u32| (o & 1) == 0;
    let recall = recall_at(&view, slab, distance, &queries, 10, 64, &even);
    assert!(recall >= 0.9, "{distance:?} filtered: recall@10 {recall}");
}

#[test]
fn recall_cosine() {
    check_recall(Distance::Cosine, true, 10);
}

#[test]
fn recall_dot() {
    check_recall(Distance::Dot, false, 20);
}

#[test]
fn recall_euclid() {
    check_recall(Distance::Euclid, false, 30);
}

#[test]
fn selective_filter_still_finds_the_accepted_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_vectors(3000, 8, 4, true);
    let slab = VectorSlab {
        data: &data,
        dim: 8,
    };
    let view = build_and_open(dir.path(), slab, Distance::Cosine, &params(true));
    // 1% selectivity: the walk goes on through rejected rows until it holds enough accepted ones.
    let rare = |o: u32| o % 100 == 7;
    let queries = random_vectors(20, 8, 5, true);
    let recall = recall_at(&view, slab, Distance::Cosine, &queries, 5, 64, &rare);
    assert!(recall >= 0.9, "recall {recall}");
    let none = view.search(slab, Distance::Cosine, &queries[..8], 5, 64, &|_| false);
    assert!(none.is_empty());
}

#[test]
fn empty_and_single_point_slabs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = VectorSlab { data: &[], dim: 4 };
    let view = build_and_open(dir.path(), empty, Distance::Cosine, &params(true));
    assert!(view.is_empty());
    assert!(view
        .search(
            empty,
            Distance::Cosine,
            &[1.0, 0.0, 0.0, 0.0],
            3,
            16,
            &|_| true
        )
        .is_empty());

    let one = [0.0f32, 1.0, 0.0, 0.0];
    let slab = VectorSlab { data: &one, dim: 4 };
    let view = build_and_open(dir.path(), slab, Distance::Dot, &params(true));
    assert_eq!(view.len(), 1);
    assert_eq!(
        view.search(slab, Distance::Dot, &[0.0, 2.0, 0.0, 0.0], 3, 16, &|_| true),
        vec![Candidate {
            offset: 0,
            score: 2.0
        }]
    );
    assert!(view
        .search(slab, Distance::Dot, &one, 3, 16, &|_| false)
        .is_empty());
}

#[test]
fn unnormalised_and_duplicate_vectors_do_not_panic() {
    // Dot products of unnormalised rows, duplicates and zero rows: no assumption of unit length.
    let mut data = random_vectors(500, 4, 6, false);
    for x in data.iter_mut().take(40) {
        *x *= 50.0;
    }
    data.extend_from_slice(&[0.5; 4 * 30]);
    data.extend_from_slice(&[0.0; 4 * 5]);
    let slab = VectorSlab {
        data: &data,
        dim: 4,
    };
    for distance in [Distance::Cosine, Distance::Dot, Distance::Euclid] {
        for deterministic in [true, false] {
            let g = build_graph(
                slab,
                distance,
                &params(deterministic),
                &AtomicBool::new(false),
            )
            .unwrap();
            assert_eq!(g.len(), slab.len());
        }
    }
}

#[test]
fn cancelled_build_stops() {
    let data = random_vectors(100, 4, 7, true);
    let slab = VectorSlab {
        data: &data,
        dim: 4,
    };
    let stop = AtomicBool::new(true);
    assert!(matches!(
        build_graph(slab, Distance::Cosine, &params(true), &stop),
        Err(Error::Cancelled)
    ));
    let bad = HnswBuildParams {
        m: 1,
        ..params(true)
    };
    assert!(matches!(
        build_graph(slab, Distance::Cosine, &bad, &AtomicBool::new(false)),
        Err(Error::InvalidInput(_))
    ));
}

fn assert_corrupt(path: &Path) {
    match GraphView::open(path) {
        Err(Error::Storage(quiver_storage::Error::Corrupt { .. })) => {}
        other => panic!("expected a corrupt-file error, got {other:?}"),
    }
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let data = random_vectors(2000, 8, 8, true);
    let slab = VectorSlab {
        data: &data,
        dim: 8,
    };
    let graph = build_graph(
        slab,
        Distance::Cosine,
        &params(true),
        &AtomicBool::new(false),
    )
    .unwrap();
    let good = dir.path().join("good");
    write_graph(&good, &graph).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join("bad");

    // Truncated anywhere: header, layer table, body.
    for cut in [0, 10, 63, 64, 70, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert_corrupt(&bad);
    }
    // Longer than the header says.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 8]);
    std::fs::write(&bad, &longer).unwrap();
    assert_corrupt(&bad);
    // Any flipped header byte.
    for i in 0..64 {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        std::fs::write(&bad, &b).unwrap();
        assert_corrupt(&bad);
    }
    // A damaged body opens (open reads no more than the header and the layer table), fails the checksum,
    // and searching it returns without panicking whatever the neighbour ids say.
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut b = bytes.clone();
    let table_end = 64 + 8 * (graph.max_level() + 1);
    for _ in 0..2000 {
        let i = rng.random_range(table_end..b.len());
        b[i] = rng.random();
    }
    std::fs::write(&bad, &b).unwrap();
    let view = GraphView::open(&bad).unwrap();
    assert!(matches!(
        view.verify_checksum(),
        Err(Error::Storage(quiver_storage::Error::Corrupt { .. }))
    ));
    for q in data.chunks_exact(8).take(50) {
        let got = view.search(slab, Distance::Cosine, q, 10, 32, &|_| true);
        assert!(got.iter().all(|c| (c.offset as usize) < slab.len()));
    }
    // A slab shorter than the graph: nodes past its end are skipped.
    let short = VectorSlab {
        data: &data[..8 * 100],
        dim: 8,
    };
    let view = GraphView::open(&good).unwrap();
    let got = view.search(short, Distance::Cosine, &data[..8], 10, 32, &|_| true);
    assert!(got.iter().all(|c| c.offset < 100));
}

/// Everything a search relies on, checked over the whole graph: list sizes, no self or duplicate links,
/// links only to nodes on the same layer, each upper layer holding exactly the nodes whose level reaches
/// it, the entry point on the top layer, and every node reachable from the entry point on layer 0.
fn assert_well_formed(graph: &GraphLayers) {
    let n = graph.len();
    let entry = graph
        .entry_point()
        .expect("a non-empty graph has an entry point");
    assert_eq!(graph.levels[entry as usize] as usize, graph.max_level());
    assert_eq!(
        graph.levels.iter().map(|&l| l as usize).max(),
        Some(graph.max_level())
    );
    assert_eq!(graph.upper.len(), graph.max_level());
    for (i, layer) in graph.upper.iter().enumerate() {
        let want: Vec<u32> = (0..n as u32)
            .filter(|&v| graph.levels[v as usize] as usize > i)
            .collect();
        assert_eq!(layer.nodes, want, "layer {}", i + 1);
    }
    for layer in 0..=graph.max_level() {
        let cap = if layer == 0 { graph.m0 } else { graph.m } as usize;
        for node in 0..n as u32 {
            let nbs: Vec<u32> = graph.neighbours(layer, node).collect();
            assert!(nbs.len() <= cap);
            let distinct: HashSet<u32> = nbs.iter().copied().collect();
            assert_eq!(
                distinct.len(),
                nbs.len(),
                "duplicate link at {layer}/{node}"
            );
            assert!(!distinct.contains(&node), "self link at {layer}/{node}");
            for nb in nbs {
                assert!(graph.levels[nb as usize] as usize >= layer);
            }
        }
    }
    let mut seen = vec![false; n];
    let mut stack = vec![entry];
    seen[entry as usize] = true;
    while let Some(v) = stack.pop() {
        for nb in graph.neighbours(0, v) {
            if !seen[nb as usize] {
                seen[nb as usize] = true;
                stack.push(nb);
            }
        }
    }
    let unreachable = seen.iter().filter(|&&s| !s).count();
    assert_eq!(unreachable, 0, "{unreachable} nodes unreachable on layer 0");
}

#[test]
fn built_graphs_are_well_formed_in_both_modes() {
    let data = random_vectors(4000, 24, 13, true);
    let slab = VectorSlab {
        data: &data,
        dim: 24,
    };
    for (deterministic, threads) in [(true, 0), (false, 2), (false, 1)] {
        let p = HnswBuildParams {
            threads,
            ..params(deterministic)
        };
        let graph = build_graph(slab, Distance::Cosine, &p, &AtomicBool::new(false)).unwrap();
        assert_well_formed(&graph);
        // mL = 1/ln(m): about n/m nodes reach layer 1.
        let on_upper = graph.levels.iter().filter(|&&l| l >= 1).count();
        assert!(
            (150..=350).contains(&on_upper),
            "{on_upper} nodes above layer 0"
        );
    }
}

/// The parallel build must be as good a graph as the sequential one: lost or overwritten links under
/// contention would show up here as lower recall on the same data.
#[test]
fn parallel_build_recalls_as_well_as_sequential() {
    let dir = tempfile::tempdir().unwrap();
    let (n, dim, k, ef) = (4000, 96, 10, 48);
    let data = random_vectors(n, dim, 11, true);
    let queries = random_vectors(100, dim, 12, true);
    let slab = VectorSlab { data: &data, dim };
    let mut recalls = Vec::new();
    for deterministic in [true, false] {
        let p = HnswBuildParams {
            threads: 2,
            ..params(deterministic)
        };
        let sub = dir.path().join(format!("{deterministic}"));
        std::fs::create_dir_all(&sub).unwrap();
        let view = build_and_open(&sub, slab, Distance::Cosine, &p);
        recalls.push(recall_at(
            &view,
            slab,
            Distance::Cosine,
            &queries,
            k,
            ef,
            &|_| true,
        ));
    }
    let (sequential, parallel) = (recalls[0], recalls[1]);
    eprintln!("recall@{k} at ef={ef}: sequential {sequential:.3}, parallel {parallel:.3}");
    assert!(sequential >= 0.8, "sequential build recall {sequential:.3}");
    assert!(
        parallel >= sequential - 0.03,
        "parallel build recall {parallel:.3} below the sequential build's {sequential:.3}"
    );
}
