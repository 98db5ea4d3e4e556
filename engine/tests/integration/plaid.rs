//! Multi-vector search through a sealed segment's token store (PLAID).

use std::collections::HashSet;

use quiver_engine::config::Distance;
use quiver_engine::plaid::synthetic::{Corpus, CorpusParams};
use quiver_engine::plaid::PlaidSearchParams;
use quiver_engine::point::{
    NamedVectors, PointInsert, PointsSelector, QueryVector, SearchRequest, Vector,
};
use quiver_engine::{Collection, Collections, PointId};

use crate::common::*;

fn corpus() -> Corpus {
    Corpus::generate(&CorpusParams {
        docs: 600,
        tokens_per_doc: 12,
        dim: 32,
        topics: 20,
        queries: 20,
        query_tokens: 8,
        seed: 7,
        ..CorpusParams::default()
    })
}

/// Documents `range` of the corpus as points with a `colbert` multivector.
fn points(corpus: &Corpus, range: std::ops::Range<usize>) -> Vec<PointInsert> {
    let dim = corpus.dim;
    range
        .map(|i| {
            let (a, b) = (corpus.offsets[i] as usize, corpus.offsets[i + 1] as usize);
            let rows: Vec<Vec<f32>> = corpus.data[a * dim..b * dim]
                .chunks_exact(dim)
                .map(|r| r.to_vec())
                .collect();
            let mut vectors = NamedVectors::new();
            vectors.insert("colbert".into(), Vector::Multi(rows));
            PointInsert {
                id: PointId::Num(i as u64),
                vectors,
                payload: None,
            }
        })
        .collect()
}

fn fill(cs: &Collections, corpus: &Corpus) -> std::sync::Arc<Collection> {
    let c = create(cs, "m", config_with_multi(corpus.dim, Distance::Cosine));
    c.upsert(points(corpus, 0..corpus.offsets.len() - 1))
        .unwrap();
    c.flush().unwrap();
    c
}

fn request(q: &[f32], dim: usize, k: usize) -> SearchRequest {
    let mut r = SearchRequest::dense(Vec::new(), k);
    r.using = "colbert".into();
    r.query = QueryVector::Multi(q.chunks_exact(dim).map(|r| r.to_vec()).collect());
    // PLAID's k<=10 defaults (1 cell per query token) are tuned for millions of tokens; this corpus has
    // ~7 tokens per centroid, so probe a few more cells, as a user of a small collection would.
    r.plaid = Some(PlaidSearchParams {
        ncells: Some(4),
        ..Default::default()
    });
    r
}

fn hits(c: &Collection, r: &SearchRequest) -> Vec<(PointId, f32)> {
    c.search(r)
        .unwrap()
        .into_iter()
        .map(|h| (h.id, h.score))
        .collect()
}

#[test]
fn token_store_search_matches_exact_and_survives_reopen() {
    let corpus = corpus();
    let dim = corpus.dim;
    let dir = tempfile::tempdir().unwrap();
    let mut before = Vec::new();
    {
        let cs = open(dir.path());
        let c = fill(&cs, &corpus);
        let (mut found, mut total) = (0usize, 0usize);
        for q in &corpus.queries {
            let approx = hits(&c, &request(q, dim, 10));
            let mut exact_req = request(q, dim, 10);
            exact_req.exact = true;
            let exact = hits(&c, &exact_req);
            let truth: HashSet<_> = exact.iter().map(|h| h.0).collect();
            found += approx.iter().filter(|h| truth.contains(&h.0)).count();
            total += exact.len();
            before.push(approx);
        }
        let recall = found as f64 / total as f64;
        println!("collection PLAID recall@10 = {recall:.3}");
        assert!(recall >= 0.9, "recall {recall}");

        // Candidates are scored exactly: the same scores as an exhaustive exact scan of those points.
        let q = &corpus.queries[0];
        let cands: Vec<PointId> = (0..600).step_by(7).map(PointId::Num).collect();
        let mut r = request(q, dim, 5);
        r.candidates = Some(cands.clone());
        let reranked = hits(&c, &r);
        let mut exact_all = request(q, dim, 600);
        exact_all.exact = true;
        let allowed: HashSet<_> = cands.iter().copied().collect();
        let want: Vec<_> = hits(&c, &exact_all)
            .into_iter()
            .filter(|h| allowed.contains(&h.0))
            .take(5)
            .collect();
        assert_eq!(reranked, want);
    }
    let cs = open(dir.path());
    let c = cs.get("m").unwrap();
    for (q, want) in corpus.queries.iter().zip(&before) {
        assert_eq!(&hits(&c, &request(q, dim, 10)), want);
    }
    // Deleted points are never returned by the store.
    let gone: Vec<PointId> = before.iter().flat_map(|h| h.iter().map(|x| x.0)).collect();
    c.delete(PointsSelector::Ids(gone.clone())).unwrap();
    let gone: HashSet<_> = gone.into_iter().collect();
    for q in &corpus.queries {
        let got = hits(&c, &request(q, dim, 10));
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|h| !gone.contains(&h.0)));
    }
}

#[test]
fn flipped_byte_in_a_token_store_fails_the_collection() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        fill(&cs, &corpus);
    }
    let seg = dir.path().join("collections/m/segments");
    let seg_dir = std::fs::read_dir(&seg)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let victim = std::fs::read_dir(&seg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "plaid"))
        .expect("the seal wrote a token store");
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let cs = open(dir.path());
    let failed = cs.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "m");
    assert!(cs.get("m").is_err());
}

/// The scale: 10,000 documents × 64 tokens × 128 d (640k tokens) in a default collection (2-bit
/// token store with ColBERTv2's centroid count), searched with PLAID's default parameters for k = 10.
/// Recall@10 against exhaustive MaxSim over the raw tokens must reach 0.95.
#[test]
fn plaid_recall_at_ten_thousand_documents() {
    let corpus = Corpus::generate(&CorpusParams {
        docs: 10_000,
        tokens_per_doc: 64,
        dim: 128,
        topics: 100,
        terms_per_topic: 64,
        shared_terms: 64,
        queries: 30,
        query_tokens: 32,
        ..CorpusParams::default()
    });
    let dim = corpus.dim;
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let mut config = quiver_engine::CollectionConfig::single(dim, Distance::Cosine);
    config.vectors.clear();
    config.vectors.insert(
        "colbert".into(),
        quiver_engine::VectorParams {
            size: dim,
            distance: Distance::Cosine,
            hnsw_config: None,
            multivector_config: Some(quiver_engine::config::MultiVectorConfig {
                comparator: quiver_engine::config::MultiVectorComparator::MaxSim,
            }),
        },
    );
    config.optimizer_config.segment_max_points = 20_000;
    let c = cs.create("big", config).unwrap();
    for start in (0..corpus.offsets.len() - 1).step_by(1000) {
        let end = (start + 1000).min(corpus.offsets.len() - 1);
        c.upsert(points(&corpus, start..end)).unwrap();
    }
    c.flush().unwrap();
    // One sealed segment with its token store, plus the (empty) appendable one.
    assert_eq!(c.info().segments_count, 2);

    let (mut found, mut total) = (0usize, 0usize);
    for q in &corpus.queries {
        let mut r = SearchRequest::dense(Vec::new(), 10);
        r.using = "colbert".into();
        r.query = QueryVector::Multi(q.chunks_exact(dim).map(|r| r.to_vec()).collect());
        let approx = hits(&c, &r);
        r.exact = true;
        let truth: HashSet<_> = hits(&c, &r).into_iter().map(|h| h.0).collect();
        found += approx.iter().filter(|h| truth.contains(&h.0)).count();
        total += truth.len();
    }
    let recall = found as f64 / total as f64;
    println!(
        "PLAID recall@10 at 10k docs x 64 tokens x 128 d, 2 bits, default params: {recall:.3}"
    );
    assert!(recall >= 0.95, "recall@10 {recall:.3}");
}
