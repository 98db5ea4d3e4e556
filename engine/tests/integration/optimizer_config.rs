//! Issue 22: the optimizer fields Qdrant honours are honoured: `vacuum_min_vector_number`,
//! `max_optimization_threads` (0 stops optimizations, a later update resumes them),
//! `prevent_unoptimized`, and the rebuild of segments a PATCH leaves built with old settings.

use std::time::{Duration, Instant};

use quiver_engine::config::{
    CollectionConfig, Distance, HnswConfigDiff, QuantizationConfig, ScalarQuantization, ScalarType,
};
use quiver_engine::point::{PointsSelector, SearchRequest, WithPayload, WithVectors};
use quiver_engine::{Collection, OptimizationKind, OptimizationStatus, PointId};
use quiver_storage::SegmentFile;
use serde_json::json;

use crate::common::*;

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn upsert_range(c: &Collection, ids: std::ops::Range<u64>, dim: usize) {
    let vs = random_vectors((ids.end - ids.start) as usize, dim, ids.start);
    c.upsert(
        ids.zip(vs)
            .map(|(i, v)| dense(i, v, json!({"i": i})))
            .collect(),
    )
    .unwrap();
}

#[test]
fn a_segment_below_vacuum_min_vector_number_is_not_vacuumed() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let mut config = small_config(2, Distance::Dot, 1000, 100_000);
    config.optimizer_config.vacuum_min_vector_number = 41;
    let c = create(&cs, "v", config);
    upsert_range(&c, 0..40, 2);
    c.flush().unwrap();
    // Half deleted passes the 0.2 threshold, but 40 points are fewer than 41.
    c.delete(PointsSelector::Ids((0..20).map(PointId::Num).collect()))
        .unwrap();
    assert_eq!(c.vacuum().unwrap(), 0);
    assert_eq!(c.info().deleted_count, 20);
    assert!(c.optimizations().queued.is_empty());
    // Qdrant counts the deleted points too: at 40 the segment is big enough.
    c.update_config(|cfg| {
        cfg.optimizer_config.vacuum_min_vector_number = 40;
        Ok(())
    })
    .unwrap();
    // The update wakes the background optimizer, which may get there first.
    assert!(c.vacuum().unwrap() <= 1);
    let info = c.info();
    assert_eq!((info.deleted_count, info.points_count), (0, 20));
    // Configs written before the field existed load with Qdrant's default.
    let old: quiver_engine::config::OptimizerConfig =
        serde_json::from_str(r#"{"segment_max_points": 10, "deleted_threshold": 0.3}"#).unwrap();
    assert_eq!(old.vacuum_min_vector_number, 1000);
}

#[test]
fn zero_optimization_threads_stops_seals_until_an_update_resumes_them() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let mut config = small_config(2, Distance::Dot, 10, 100_000);
    config.optimizer_config.max_optimization_threads = Some(0);
    let c = create(&cs, "t", config);
    for start in (0..60).step_by(20) {
        upsert_range(&c, start..start + 20, 2);
    }
    // Far past segment_max_points, and the optimizer had time to wake: nothing sealed.
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.manifest().segments.is_empty());
    assert!(c.optimizations().completed.is_empty());
    let info = c.info();
    assert_eq!((info.points_count, info.segments_count), (60, 1));
    // Still searchable (exactly, from the appendable segment).
    let mut req = SearchRequest::dense(vec![1.0, 0.0], 60);
    req.with_payload = WithPayload::All;
    assert_eq!(c.search(&req).unwrap().len(), 60);
    // Back to automatic: the update wakes the optimizer, which seals the backlog.
    c.update_config(|cfg| {
        cfg.optimizer_config.max_optimization_threads = None;
        Ok(())
    })
    .unwrap();
    wait_for("the seal", || !c.manifest().segments.is_empty());
    wait_for("the optimizer to settle", || {
        c.info().points_count == 60 && c.optimizations().running.is_none()
    });
    assert_eq!(c.count(None).unwrap(), 60);
}

#[test]
fn prevent_unoptimized_holds_upserts_until_the_seal_drains_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let mut config = small_config(2, Distance::Dot, 10, 100_000);
    config.optimizer_config.prevent_unoptimized = Some(true);
    let c = create(&cs, "p", config);
    for start in (0..50).step_by(10) {
        upsert_range(&c, start..start + 10, 2);
    }
    // Each batch fills the appendable segment; the next one waits until it is sealed, so all but
    // the last batch are in sealed segments when the last upsert returns.
    assert!(c.manifest().segments.len() >= 4, "{:?}", c.manifest());
    assert_eq!(c.count(None).unwrap(), 50);
}

fn rebuild_config() -> CollectionConfig {
    let mut c = small_config(8, Distance::Euclid, 1_000_000, 50);
    c.hnsw_config.m = 16;
    c
}

/// The manifest's only segment: its id and whether it has codes.
fn only_segment(c: &Collection) -> (u64, bool) {
    let m = c.manifest();
    assert_eq!(m.segments.len(), 1, "{m:?}");
    let e = &m.segments[0];
    let codes = e
        .files
        .iter()
        .any(|f| matches!(&f.file, SegmentFile::Attached { name } if name.starts_with("codes:")));
    (e.id, codes)
}

fn built_record(c: &Collection) -> serde_json::Value {
    let m = c.manifest();
    let f = m.segments[0]
        .files
        .iter()
        .find(|f| matches!(&f.file, SegmentFile::Attached { name } if name == "built"))
        .expect("a build record")
        .clone();
    serde_json::from_slice(&std::fs::read(f.full_path(c.dir())).unwrap()).unwrap()
}

fn exact_answers(c: &Collection, queries: &[Vec<f32>]) -> Vec<Vec<(PointId, f32)>> {
    queries
        .iter()
        .map(|q| {
            let mut req = SearchRequest::dense(q.clone(), 20);
            req.exact = true;
            c.search(&req)
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.score))
                .collect()
        })
        .collect()
}

#[test]
fn a_patch_rebuilds_segments_built_with_old_settings() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "r", rebuild_config());
    upsert_range(&c, 0..300, 8);
    c.flush().unwrap();
    let (before, codes) = only_segment(&c);
    assert!(!codes);
    assert_eq!(built_record(&c)[""]["m"], 16);
    // Nothing to rebuild while the record matches the config.
    c.flush().unwrap();
    assert_eq!(only_segment(&c).0, before);

    c.update_config(|cfg| {
        cfg.vectors.get_mut("").unwrap().hnsw_config = Some(HnswConfigDiff {
            m: Some(8),
            ..HnswConfigDiff::default()
        });
        cfg.quantization_config = Some(QuantizationConfig::Scalar(ScalarQuantization {
            kind: ScalarType::Int8,
            quantile: None,
            always_ram: None,
        }));
        Ok(())
    })
    .unwrap();
    // Deleted while the background rebuild may be running: carried into the new segment either way.
    c.delete(PointsSelector::Ids((0..10).map(PointId::Num).collect()))
        .unwrap();
    // `flush` runs the same passes; the rebuild is done once it returns.
    c.flush().unwrap();
    let (after, codes) = only_segment(&c);
    assert_ne!(after, before);
    assert!(
        codes,
        "the rebuilt segment has the new quantization's codes"
    );
    let record = built_record(&c);
    assert_eq!(record[""]["m"], 8);
    assert!(record[""]["quantization"]["scalar"].is_object(), "{record}");
    let report = c.optimizations();
    let rebuild = report
        .completed
        .iter()
        .find(|o| o.kind == OptimizationKind::ConfigMismatch)
        .expect("a config_mismatch optimization");
    assert_eq!(rebuild.status, OptimizationStatus::Done);
    assert_eq!(rebuild.segments[0].id, Some(before));

    let check = |c: &Collection| {
        assert_eq!(c.count(None).unwrap(), 290);
        let ids: Vec<PointId> = (0..300).map(PointId::Num).collect();
        let got = c
            .retrieve(&ids, &WithPayload::All, &WithVectors::None)
            .unwrap();
        assert_eq!(got.len(), 290);
        for r in &got {
            let PointId::Num(i) = r.id else { panic!() };
            assert!(i >= 10);
            assert_eq!(r.payload.as_ref().unwrap()["i"], json!(i));
        }
    };
    check(&c);
    let queries = random_vectors(5, 8, 99);
    let answers = exact_answers(&c, &queries);
    // The answers are those of the points' own vectors: the same as a fresh exact scan of them.
    let expected = {
        let vs = random_vectors(300, 8, 0);
        queries
            .iter()
            .map(|q| {
                let mut all: Vec<(PointId, f32)> = vs
                    .iter()
                    .enumerate()
                    .skip(10)
                    .map(|(i, v)| {
                        let d: f32 = v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
                        (PointId::Num(i as u64), d.sqrt())
                    })
                    .collect();
                all.sort_by(|a, b| a.1.total_cmp(&b.1));
                all.truncate(20);
                all.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let answer_ids: Vec<Vec<PointId>> = answers
        .iter()
        .map(|a| a.iter().map(|h| h.0).collect())
        .collect();
    assert_eq!(answer_ids, expected);

    drop(c);
    drop(cs);
    let cs = open(dir.path());
    let c = cs.get("r").unwrap();
    check(&c);
    assert_eq!(exact_answers(&c, &queries), answers);
    // Built with the config in force: nothing left to rebuild after the restart.
    c.flush().unwrap();
    assert_eq!(only_segment(&c).0, after);
    assert!(c
        .optimizations()
        .completed
        .iter()
        .all(|o| o.kind != OptimizationKind::ConfigMismatch));
}

static HOOK_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_hook_call() {
    HOOK_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn the_after_optimize_hook_runs_on_the_optimizer_thread_after_a_background_seal() {
    let dir = tempfile::tempdir().unwrap();
    let options = quiver_engine::collection::EngineOptions {
        after_optimize: Some(count_hook_call),
        ..options()
    };
    let cs = quiver_engine::Collections::open(dir.path(), options).unwrap();
    let c = create(&cs, "h", small_config(2, Distance::Dot, 10, 100_000));
    upsert_range(&c, 0..5, 2);
    // Under segment_max_points: the optimizer has nothing to do, and the hook does not run.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(HOOK_CALLS.load(std::sync::atomic::Ordering::SeqCst), 0);
    upsert_range(&c, 5..30, 2);
    wait_for("a background seal", || !c.manifest().segments.is_empty());
    wait_for("the hook", || {
        HOOK_CALLS.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
}
