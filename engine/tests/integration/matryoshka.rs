//! A vector bound to a model with Matryoshka `dims`: the graph walks the prefix, the full vectors
//! rescore (or, for a funnel's first stage, the prefix scores come back as they are).

use std::collections::HashSet;

use quiver_engine::config::{
    BinaryQuantization, CollectionConfig, Distance, EmbeddingBinding, MultiVectorConfig,
    QuantizationConfig, ScalarQuantization, ScalarType,
};
use quiver_engine::point::SearchRequest;
use quiver_engine::{PointId, VectorParams};
use quiver_storage::SegmentFile;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::*;

const DIM: usize = 64;
const DIMS: usize = 16;

/// Vectors whose first 16 components carry most of the length, as Matryoshka training arranges.
fn matryoshka_vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            (0..DIM)
                .map(|i| {
                    let scale = if i < DIMS { 1.0 } else { 0.15 };
                    rng.random_range(-scale..scale)
                })
                .collect()
        })
        .collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn bound_config() -> CollectionConfig {
    let mut c = small_config(DIM, Distance::Cosine, 5_000, 100);
    c.embedding.insert(
        String::new(),
        EmbeddingBinding {
            model: "m".into(),
            task: "retrieval".into(),
            dims: Some(DIMS),
            store_text: true,
        },
    );
    c
}

fn num(id: &PointId) -> usize {
    match id {
        PointId::Num(n) => *n as usize,
        PointId::Uuid(_) => panic!("uuid"),
    }
}

#[test]
fn prefix_graph_rescores_with_full_vectors_and_returns_prefix_scores_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3_000;
    let data = matryoshka_vectors(n + 50, 5);
    {
        let cs = open(dir.path());
        let c = create(&cs, "m", bound_config());
        c.upsert(
            (0..n)
                .map(|i| dense(i as u64, data[i].clone(), json!({})))
                .collect(),
        )
        .unwrap();
        c.flush().unwrap();
        let manifest = c.manifest();
        let prefix_files = manifest
            .segments
            .iter()
            .flat_map(|s| &s.files)
            .filter(|f| matches!(&f.file, SegmentFile::Attached { name } if name == "prefix:"))
            .count();
        assert_eq!(prefix_files, 1, "one sealed segment with a prefix file");
        assert_eq!(c.info().indexed_vectors_count, n);
    }
    let cs = open(dir.path());
    let c = cs.get("m").unwrap();
    // The last 50 points stay in the appendable segment, which has no graph.
    c.upsert(
        (n..n + 50)
            .map(|i| dense(i as u64, data[i].clone(), json!({})))
            .collect(),
    )
    .unwrap();
    let units: Vec<Vec<f32>> = data.iter().map(|v| unit(v)).collect();
    let queries = matryoshka_vectors(40, 99);
    let (mut found_full, mut found_prefix) = (0, 0);
    for q in &queries {
        let uq = unit(q);
        let qp = unit(&q[..DIMS]);
        let mut by_full: Vec<(usize, f32)> = units
            .iter()
            .enumerate()
            .map(|(i, u)| (i, dot(&uq, u)))
            .collect();
        by_full.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut by_prefix: Vec<(usize, f32)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (i, dot(&qp, &unit(&v[..DIMS]))))
            .collect();
        by_prefix.sort_by(|a, b| b.1.total_cmp(&a.1));

        let hits = c.search(&SearchRequest::dense(q.clone(), 10)).unwrap();
        assert_eq!(hits.len(), 10);
        for h in &hits {
            let want = dot(&uq, &units[num(&h.id)]);
            assert!(
                (h.score - want).abs() < 1e-5,
                "full score {} vs {want}",
                h.score
            );
        }
        let truth: HashSet<usize> = by_full[..10].iter().map(|h| h.0).collect();
        found_full += hits.iter().filter(|h| truth.contains(&num(&h.id))).count();

        let mut first_stage = SearchRequest::dense(q.clone(), 10);
        first_stage.rescore = false;
        let hits = c.search(&first_stage).unwrap();
        for h in &hits {
            let want = dot(&qp, &unit(&data[num(&h.id)][..DIMS]));
            assert!(
                (h.score - want).abs() < 1e-5,
                "prefix score {} vs {want}",
                h.score
            );
        }
        let truth: HashSet<usize> = by_prefix[..10].iter().map(|h| h.0).collect();
        found_prefix += hits.iter().filter(|h| truth.contains(&num(&h.id))).count();

        let mut exact = SearchRequest::dense(q.clone(), 10);
        exact.exact = true;
        let exact_hits = c.search(&exact).unwrap();
        let got: Vec<usize> = exact_hits.iter().map(|h| num(&h.id)).collect();
        let want: Vec<usize> = by_full[..10].iter().map(|h| h.0).collect();
        assert_eq!(got, want, "exact search ranks by the full vectors");
    }
    let total = 10 * queries.len();
    let recall_full = found_full as f64 / total as f64;
    let recall_prefix = found_prefix as f64 / total as f64;
    eprintln!("recall@10: rescored {recall_full:.3}, prefix stage {recall_prefix:.3}");
    assert!(recall_full >= 0.9, "rescored recall@10 = {recall_full}");
    assert!(
        recall_prefix >= 0.9,
        "prefix-stage recall@10 = {recall_prefix}"
    );

    // A point of the appendable segment found by its own vector scores 1 on the prefix too.
    let mut own = SearchRequest::dense(data[n + 7].clone(), 1);
    own.rescore = false;
    let top = c.search(&own).unwrap();
    assert_eq!(num(&top[0].id), n + 7);
    assert!((top[0].score - 1.0).abs() < 1e-5);
}

/// Recall@10 of `c`'s rescored searches and of its first-stage (prefix-score) searches, checking every
/// score against the full or prefix vectors.
fn recalls(
    c: &quiver_engine::Collection,
    data: &[Vec<f32>],
    ignore: bool,
    oversampling: Option<f64>,
) -> (f64, f64) {
    let units: Vec<Vec<f32>> = data.iter().map(|v| unit(v)).collect();
    let queries = matryoshka_vectors(40, 99);
    let (mut found_full, mut found_prefix) = (0, 0);
    for q in &queries {
        let uq = unit(q);
        let qp = unit(&q[..DIMS]);
        let top = |score: &dyn Fn(usize) -> f32| -> HashSet<usize> {
            let mut all: Vec<(usize, f32)> = (0..data.len()).map(|i| (i, score(i))).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1));
            all[..10].iter().map(|h| h.0).collect()
        };
        let full_score = |i: usize| dot(&uq, &units[i]);
        let prefix_score = |i: usize| dot(&qp, &unit(&data[i][..DIMS]));

        let mut rescored = SearchRequest::dense(q.clone(), 10);
        rescored.ignore_quantization = ignore;
        rescored.oversampling = oversampling;
        let hits = c.search(&rescored).unwrap();
        assert_eq!(hits.len(), 10);
        for h in &hits {
            let want = full_score(num(&h.id));
            assert!((h.score - want).abs() < 1e-5, "full {} vs {want}", h.score);
        }
        let truth = top(&full_score);
        found_full += hits.iter().filter(|h| truth.contains(&num(&h.id))).count();

        let mut first_stage = rescored.clone();
        first_stage.rescore = false;
        let hits = c.search(&first_stage).unwrap();
        assert_eq!(hits.len(), 10);
        for h in &hits {
            let want = prefix_score(num(&h.id));
            assert!(
                (h.score - want).abs() < 1e-5,
                "prefix {} vs {want}",
                h.score
            );
        }
        let truth = top(&prefix_score);
        found_prefix += hits.iter().filter(|h| truth.contains(&num(&h.id))).count();
    }
    let total = (10 * queries.len()) as f64;
    (found_full as f64 / total, found_prefix as f64 / total)
}

#[test]
fn quantization_codes_the_prefix_the_graph_walks() {
    let n = 3_000;
    let data = matryoshka_vectors(n + 50, 5);
    let quantizations = [
        QuantizationConfig::Binary(BinaryQuantization::default()),
        QuantizationConfig::Scalar(ScalarQuantization {
            kind: ScalarType::Int8,
            quantile: None,
            always_ram: Some(true),
        }),
    ];
    for q in quantizations {
        let dir = tempfile::tempdir().unwrap();
        let cs = open(dir.path());
        let mut config = bound_config();
        config.quantization_config = Some(q);
        let c = create(&cs, "m", config);
        c.upsert(
            (0..n)
                .map(|i| dense(i as u64, data[i].clone(), json!({})))
                .collect(),
        )
        .unwrap();
        c.flush().unwrap();
        // The codes stand for the 16-component prefix rows, not the 64-component vectors: scalar
        // codes are a byte per component and a correction per row, binary a bit per component in
        // 64-bit words.
        let codes: Vec<u64> = c
            .manifest()
            .segments
            .iter()
            .flat_map(|s| &s.files)
            .filter(|f| matches!(&f.file, SegmentFile::Attached { name } if name == "codes:"))
            .map(|f| f.size)
            .collect();
        assert_eq!(codes.len(), 1, "{q:?}: one sealed segment with codes");
        let per_row = match q {
            QuantizationConfig::Scalar(_) => DIMS + 4,
            QuantizationConfig::Binary(_) => 8,
        };
        let (least, most) = ((n * per_row) as u64, (n * per_row + 4096) as u64);
        assert!(
            (least..most).contains(&codes[0]),
            "{q:?}: {} bytes of codes for {n} rows",
            codes[0]
        );
        // Points of the appendable segment are scanned on the same scales.
        c.upsert(
            (n..n + 50)
                .map(|i| dense(i as u64, data[i].clone(), json!({})))
                .collect(),
        )
        .unwrap();
        // 16 bits a row rank coarsely: the codes' candidates need a wide oversampling. That they
        // miss at the default says the walk scores the codes, not the prefix rows.
        let oversampling = match q {
            QuantizationConfig::Binary(_) => Some(30.0),
            QuantizationConfig::Scalar(_) => None,
        };
        let (full, prefix) = recalls(&c, &data, false, oversampling);
        let (full_rows, prefix_rows) = recalls(&c, &data, true, None);
        eprintln!(
            "{q:?}: recall@10 rescored {full:.3} (on the prefix rows {full_rows:.3}), prefix stage \
             {prefix:.3} ({prefix_rows:.3})"
        );
        assert!(
            full >= 0.9 && full_rows >= 0.9,
            "{q:?}: {full}, {full_rows}"
        );
        assert!(
            prefix >= 0.9 && prefix_rows >= 0.9,
            "{q:?}: {prefix}, {prefix_rows}"
        );
        if let QuantizationConfig::Binary(_) = q {
            let (coarse, _) = recalls(&c, &data, false, None);
            assert!(
                coarse < 0.8 && full_rows > 0.95,
                "{coarse} against {full_rows}"
            );
        }
    }
}

#[test]
fn bindings_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let bind = |dims| EmbeddingBinding {
        model: "m".into(),
        task: "retrieval".into(),
        dims,
        store_text: true,
    };
    let mut too_big = CollectionConfig::single(8, Distance::Cosine);
    too_big.embedding.insert(String::new(), bind(Some(9)));
    let err = cs.create("a", too_big).err().expect("rejected").to_string();
    assert!(
        err.contains("dims must be between 1 and the vector size 8"),
        "{err}"
    );

    let mut unknown = CollectionConfig::single(8, Distance::Cosine);
    unknown.embedding.insert("other".into(), bind(None));
    let err = cs.create("b", unknown).err().expect("rejected").to_string();
    assert!(err.contains("`other` is not a vector"), "{err}");

    let mut multi = CollectionConfig::single(8, Distance::Cosine);
    multi.vectors.insert(
        "tokens".into(),
        VectorParams {
            size: 4,
            distance: Distance::Cosine,
            hnsw_config: None,
            multivector_config: Some(MultiVectorConfig::max_sim()),
            on_disk: None,
            quantization_config: None,
        },
    );
    multi.embedding.insert("tokens".into(), bind(Some(2)));
    let err = cs.create("c", multi).err().expect("rejected").to_string();
    assert!(err.contains("`dims` applies to dense vectors"), "{err}");

    // The binding is stored with the collection.
    let mut ok = CollectionConfig::single(8, Distance::Cosine);
    ok.embedding.insert(String::new(), bind(Some(4)));
    cs.create("d", ok.clone()).unwrap();
    drop(cs);
    let cs = open(dir.path());
    assert_eq!(*cs.get("d").unwrap().config(), ok);
}
