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

/// The issue's scale: 10,000 documents × 64 tokens × 128 d (640k tokens) in a default collection (2-bit
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
            multivector_config: Some(quiver_engine::config::MultiVectorConfig::max_sim()),
            on_disk: None,
            quantization_config: None,
        },
    );
    config.optimizer_config.segment_max_points = 20_000;
    // One segment is what is measured: no seals by bytes while the upserts run.
    config.optimizer_config.indexing_threshold = Some(0);
    let c = cs.create("big", config).unwrap();
    for start in (0..corpus.offsets.len() - 1).step_by(1000) {
        let end = (start + 1000).min(corpus.offsets.len() - 1);
        c.upsert(points(&corpus, start..end)).unwrap();
    }
    c.flush().unwrap();
    // One sealed segment with its token store, plus the (empty) appendable one.
    assert_eq!(c.info().segments_count, 2);

    // Two truths: exhaustive MaxSim over the stored (decompressed) tokens, which is what PLAID
    // approximates, and exhaustive MaxSim over the inserted tokens, which also counts what the 2-bit
    // compression itself costs.
    let n = corpus.offsets.len() - 1;
    let (mut found, mut found_raw, mut total) = (0usize, 0usize, 0usize);
    for q in &corpus.queries {
        let mut r = SearchRequest::dense(Vec::new(), 10);
        r.using = "colbert".into();
        r.query = QueryVector::Multi(q.chunks_exact(dim).map(|r| r.to_vec()).collect());
        let approx = hits(&c, &r);
        r.exact = true;
        let truth: HashSet<_> = hits(&c, &r).into_iter().map(|h| h.0).collect();
        let mut raw: Vec<(f32, u64)> = (0..n)
            .map(|i| {
                let (a, b) = (corpus.offsets[i] as usize, corpus.offsets[i + 1] as usize);
                let doc = &corpus.data[a * dim..b * dim];
                (quiver_engine::plaid::max_sim(q, doc, dim), i as u64)
            })
            .collect();
        raw.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let raw_truth: HashSet<_> = raw[..10].iter().map(|h| PointId::Num(h.1)).collect();
        found += approx.iter().filter(|h| truth.contains(&h.0)).count();
        found_raw += approx.iter().filter(|h| raw_truth.contains(&h.0)).count();
        total += truth.len();
    }
    let recall = found as f64 / total as f64;
    let recall_raw = found_raw as f64 / total as f64;
    println!(
        "PLAID recall@10 at 10k docs x 64 tokens x 128 d, 2 bits, default params: {recall:.3} \
         against stored tokens, {recall_raw:.3} against inserted tokens"
    );
    assert!(recall >= 0.95, "recall@10 {recall:.3}");
    assert!(
        recall_raw >= 0.9,
        "recall@10 against inserted tokens {recall_raw:.3}"
    );
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The tokens of point `id` as the collection returns them.
fn stored_tokens(c: &Collection, id: u64) -> Vec<Vec<f32>> {
    use quiver_engine::point::{WithPayload, WithVectors};
    let records = c
        .retrieve(
            &[PointId::Num(id)],
            &WithPayload::None,
            &WithVectors::Names(vec!["colbert".into()]),
        )
        .unwrap();
    match &records[0].vectors.as_ref().unwrap()["colbert"] {
        Vector::Multi(rows) => rows.clone(),
        other => panic!("expected a multivector, got {other:?}"),
    }
}

#[test]
fn sealed_segments_keep_tokens_compressed_unless_told_to_keep_originals() {
    use quiver_engine::config::TokenStoreConfig;
    let corpus = corpus();
    let dim = corpus.dim;
    let n = corpus.offsets.len() - 1;
    let original = |i: usize| -> Vec<Vec<f32>> {
        let (a, b) = (corpus.offsets[i] as usize, corpus.offsets[i + 1] as usize);
        corpus.data[a * dim..b * dim]
            .chunks_exact(dim)
            .map(|r| r.to_vec())
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let mut sealed_bytes = Vec::new();
    for keep_originals in [false, true] {
        let mut config = config_with_multi(dim, Distance::Cosine);
        let multi = config.vectors.get_mut("colbert").unwrap();
        multi.multivector_config.as_mut().unwrap().token_store = Some(TokenStoreConfig {
            nbits: 2,
            keep_originals,
            rescore: false,
        });
        let name = format!("keep-{keep_originals}");
        let c = create(&cs, &name, config);
        c.upsert(points(&corpus, 0..n)).unwrap();

        // Before the seal: the appendable segment holds f16 (compressed-only) or f32 tokens (Cosine
        // rows are normalised on the way in, which can move the last bit).
        for id in [0usize, 17, 599] {
            for (got, want) in stored_tokens(&c, id as u64).iter().zip(original(id)) {
                for (g, w) in got.iter().zip(&want) {
                    let tolerance = if keep_originals { 1e-6 } else { 1e-3 };
                    assert!((g - w).abs() <= tolerance, "{g} vs {w}");
                }
            }
        }
        c.flush().unwrap();
        let info = c.info();
        sealed_bytes.push(info.disk_bytes - info.wal_bytes);

        // After: the inserted tokens unchanged, or their decompressed form (close, not equal).
        let mut cos_sum = 0.0f64;
        let mut count = 0usize;
        for id in 0..n {
            let got = stored_tokens(&c, id as u64);
            let want = original(id);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                if keep_originals {
                    assert!(g.iter().zip(w).all(|(a, b)| (a - b).abs() <= 1e-6));
                }
                cos_sum += cosine(g, w) as f64;
                count += 1;
            }
        }
        let mean_cos = cos_sum / count as f64;
        println!("keep_originals={keep_originals}: mean token cosine {mean_cos:.4}");
        if !keep_originals {
            assert!(mean_cos > 0.95 && mean_cos < 0.9999, "{mean_cos}");
        }

        // Search scores are MaxSim over exactly the tokens a read returns.
        for q in corpus.queries.iter().take(5) {
            for (id, score) in hits(&c, &request(q, dim, 10)) {
                let PointId::Num(id) = id else { unreachable!() };
                let tokens: Vec<f32> = stored_tokens(&c, id).concat();
                let want = quiver_engine::plaid::max_sim(q, &tokens, dim);
                assert!((score - want).abs() < 1e-4, "{score} vs {want}");
            }
        }
    }
    // Compressed-only drops 4 bytes per dimension per token, keeping about nbits/8 + a centroid id.
    let raw_bytes = (corpus.data.len() * 4) as u64;
    println!(
        "sealed bytes: compressed-only {}, with originals {}, raw tokens {raw_bytes}",
        sealed_bytes[0], sealed_bytes[1]
    );
    assert!(
        sealed_bytes[1] - sealed_bytes[0] >= raw_bytes * 9 / 10,
        "{sealed_bytes:?} raw {raw_bytes}"
    );
}

/// `token_store.rescore`: a sealed segment writes the tokens' f16 originals beside its store, reads
/// return them, search scores are exact MaxSim over them, and a segment sealed without them (as before
/// the option existed) opens and searches as it did.
#[test]
fn rescored_token_store_keeps_f16_originals_and_scores_on_them() {
    use quiver_engine::config::TokenStoreConfig;
    let corpus = corpus();
    let dim = corpus.dim;
    let n = corpus.offsets.len() - 1;
    let original = |i: usize| -> Vec<f32> {
        let (a, b) = (corpus.offsets[i] as usize, corpus.offsets[i + 1] as usize);
        corpus.data[a * dim..b * dim].to_vec()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut answers = Vec::new();
    {
        let cs = open(dir.path());
        for rescore in [false, true] {
            let mut config = config_with_multi(dim, Distance::Cosine);
            let multi = config.vectors.get_mut("colbert").unwrap();
            multi.multivector_config.as_mut().unwrap().token_store = Some(TokenStoreConfig {
                nbits: 2,
                keep_originals: false,
                rescore,
            });
            let c = create(&cs, &format!("rescore-{rescore}"), config);
            c.upsert(points(&corpus, 0..n)).unwrap();
            c.flush().unwrap();
            let f16_files = walk(dir.path())
                .into_iter()
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "f16")
                        && p.components()
                            .any(|c| c.as_os_str() == format!("rescore-{rescore}").as_str())
                })
                .count();
            assert_eq!(f16_files, usize::from(rescore));
            // Reads: the f16 originals (to f16 precision), or the decompressed tokens.
            let mut max_err = 0.0f32;
            for id in 0..n {
                let got: Vec<f32> = stored_tokens(&c, id as u64).concat();
                let want = original(id);
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    max_err = max_err.max((g - w).abs());
                }
            }
            if rescore {
                assert!(max_err <= 1e-3, "f16 originals off by {max_err}");
            } else {
                assert!(max_err > 1e-2, "decompressed tokens off by only {max_err}");
            }
            // Scores are MaxSim over exactly what a read returns.
            let mut per_query = Vec::new();
            for q in &corpus.queries {
                let got = hits(&c, &request(q, dim, 10));
                assert_eq!(got.len(), 10);
                for &(id, score) in &got {
                    let PointId::Num(id) = id else { unreachable!() };
                    let tokens: Vec<f32> = stored_tokens(&c, id).concat();
                    let want = quiver_engine::plaid::max_sim(q, &tokens, dim);
                    assert!((score - want).abs() < 1e-4, "{score} vs {want}");
                }
                per_query.push(got);
            }
            answers.push(per_query);
        }
    }
    // Both kinds of segment reopen and answer as before.
    let cs = open(dir.path());
    for (rescore, want) in [false, true].into_iter().zip(&answers) {
        let c = cs.get(&format!("rescore-{rescore}")).unwrap();
        for (q, w) in corpus.queries.iter().zip(want) {
            assert_eq!(&hits(&c, &request(q, dim, 10)), w);
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Waits until no seal or vacuum is running or due.
fn wait_quiet(c: &Collection) {
    let start = std::time::Instant::now();
    loop {
        let r = c.optimizations();
        if r.running.is_none() && r.queued.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "optimizer never went quiet"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Issue 25: a multivector collection seals in the background by bytes of token rows (well before
/// `segment_max_points`; the default threshold is checked in `config.rs`), and once seals have run the WAL holds only the appendable segment's records,
/// not every record since the log was last empty, while a reopen without a flush (as after SIGKILL)
/// still finds every point.
#[test]
fn issue_25_multivector_seals_by_token_bytes_and_the_wal_keeps_only_unsealed_records() {
    // 64 tokens × 128 d × 4 bytes = 32 KiB a document on average (32 to 96 tokens): a 4 MiB
    // threshold seals about every 128.
    let corpus = Corpus::generate(&CorpusParams {
        docs: 1_200,
        tokens_per_doc: 64,
        dim: 128,
        topics: 20,
        queries: 5,
        query_tokens: 16,
        seed: 3,
        ..CorpusParams::default()
    });
    let dim = corpus.dim;
    let n = corpus.offsets.len() - 1;
    // The largest document's rows: which documents stay unsealed depends on when a seal freezes.
    let doc_bytes = corpus
        .offsets
        .windows(2)
        .map(|w| (w[1] - w[0]) as usize * dim * 4)
        .max()
        .unwrap();
    let threshold_kib = 4_096;
    let threshold = threshold_kib * 1024;
    let dir = tempfile::tempdir().unwrap();
    let mut before = Vec::new();
    let written;
    {
        let cs = open(dir.path());
        let mut config = config_with_multi(dim, Distance::Cosine);
        assert!(config.optimizer_config.segment_max_points > n);
        config.optimizer_config.indexing_threshold = Some(threshold_kib);
        let c = create(&cs, "m", config);
        // Small batches: background seals start on their own, well before segment_max_points.
        let first = 300;
        for start in (0..first).step_by(5) {
            c.upsert(points(&corpus, start..start + 5)).unwrap();
        }
        wait_quiet(&c);
        assert!(c.info().segments_count >= 3, "{:?}", c.info());
        // Then one document at a time until a seal is running (its freeze is behind it), and three
        // more: records land between the seal's freeze and its WAL trim, so the WAL chunk holds folded
        // and unfolded records together.
        let sealed_points =
            |c: &Collection| -> usize { c.optimizations().idle.iter().map(|s| s.points).sum() };
        let mut count = first;
        while c.optimizations().running.is_none() {
            assert!(count < n, "no seal started");
            c.upsert(points(&corpus, count..count + 1)).unwrap();
            count += 1;
        }
        for _ in 0..3 {
            c.upsert(points(&corpus, count..count + 1)).unwrap();
            count += 1;
        }
        wait_quiet(&c);
        written = count;
        let info = c.info();
        assert_eq!(info.points_count, written);
        let unsealed = written - sealed_points(&c);
        // The WAL holds the appendable segment's records (a document's tokens plus a little framing
        // each) and nothing the seals folded: the last seal alone folded at least the threshold.
        let wal_bound = (unsealed * (doc_bytes + 1024) + 2 * 64) as u64;
        assert!(
            info.wal_bytes <= wal_bound && wal_bound < threshold as u64,
            "WAL of {} bytes for {unsealed} unsealed documents of at most {doc_bytes} bytes",
            info.wal_bytes,
        );
        let n = written;
        let tokens = corpus.offsets[n] as usize;
        println!(
            "{n} documents, {tokens} tokens: {:.0} bytes/token on disk, {:.0} of them WAL",
            info.disk_bytes as f64 / tokens as f64,
            info.wal_bytes as f64 / tokens as f64
        );
        for q in &corpus.queries {
            before.push(hits(&c, &request(q, dim, 10)));
        }
        // Dropped without a flush: the appendable segment comes back from the WAL alone.
    }
    let cs = open(dir.path());
    let c = cs.get("m").unwrap();
    let n = c.count(None).unwrap();
    assert_eq!(n, written);
    let all: Vec<PointId> = (0..n as u64).map(PointId::Num).collect();
    let got = c
        .retrieve(
            &all,
            &quiver_engine::WithPayload::None,
            &quiver_engine::WithVectors::All,
        )
        .unwrap();
    assert_eq!(got.len(), n);
    for (q, want) in corpus.queries.iter().zip(&before) {
        assert_eq!(&hits(&c, &request(q, dim, 10)), want);
    }
}

/// Issue 25: a multi-vector query searches segments (and the appendable segment's rows) on several
/// threads; the hits and their scores are the same as on one thread.
#[test]
fn issue_25_multivector_search_on_many_threads_matches_one_thread() {
    let corpus = corpus();
    let dim = corpus.dim;
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "m", config_with_multi(dim, Distance::Cosine));
    // Three sealed segments with their token stores, and 200 points in the appendable segment.
    for start in (0..400).step_by(100) {
        c.upsert(points(&corpus, start..start + 100)).unwrap();
        if start < 300 {
            c.flush().unwrap();
        }
    }
    c.upsert(points(&corpus, 400..500)).unwrap();
    assert_eq!(c.info().segments_count, 4);
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let (one, four) = (pool(1), pool(4));
    for q in &corpus.queries {
        for exact in [false, true] {
            let mut r = request(q, dim, 10);
            r.exact = exact;
            let want = one.install(|| hits(&c, &r));
            let got = four.install(|| hits(&c, &r));
            assert_eq!(want.len(), 10);
            assert_eq!(got, want, "exact: {exact}");
        }
    }
}

/// Issue 25: a backlog that piled up past the byte threshold (here, one large upsert) is sealed as
/// several segments of one to two thresholds' worth each, cut in id order, rather than as one segment
/// whose token store trains on every token at once.
#[test]
fn issue_25_a_backlog_past_the_byte_threshold_seals_in_threshold_sized_segments() {
    let corpus = corpus();
    let dim = corpus.dim;
    let n = corpus.offsets.len() - 1;
    let threshold_kib = 64;
    let threshold = threshold_kib * 1024;
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let mut config = config_with_multi(dim, Distance::Cosine);
    config.optimizer_config.indexing_threshold = Some(threshold_kib);
    assert!(config.optimizer_config.segment_max_points > n);
    let c = create(&cs, "m", config);
    // One request: every document is in the appendable segment before a seal can freeze it.
    c.upsert(points(&corpus, 0..n)).unwrap();
    c.flush().unwrap();
    wait_quiet(&c);

    // The parts the seal must have cut: in id order, each cut once it holds the threshold (a
    // document's bytes counted as `indexing_threshold` counts them: 4 per component of every token
    // row, and of the absent dense vector of `config_with_multi`, whose column the appendable segment
    // keeps); a remainder under the threshold joins the part before it.
    let doc_bytes = |i: usize| ((corpus.offsets[i + 1] - corpus.offsets[i]) as usize + 1) * dim * 4;
    let mut want = vec![0usize];
    let mut bytes = 0;
    for i in 0..n {
        *want.last_mut().unwrap() += 1;
        bytes += doc_bytes(i);
        if bytes >= threshold {
            want.push(0);
            bytes = 0;
        }
    }
    let rest = want.pop().unwrap();
    *want.last_mut().unwrap() += rest;
    assert!(want.len() >= 4 && rest > 0, "{want:?} and {rest}");
    let got: Vec<usize> = c
        .manifest()
        .segments
        .iter()
        .map(|s| s.num_points as usize)
        .collect();
    assert_eq!(got, want);
    // Every document is found where it was sealed: the best hit of each of its own token sets.
    for i in [0, n / 3, n - 1] {
        let (a, b) = (corpus.offsets[i] as usize, corpus.offsets[i + 1] as usize);
        let hit = hits(&c, &request(&corpus.data[a * dim..b * dim], dim, 1));
        assert_eq!(hit[0].0, PointId::Num(i as u64));
    }
}
