//! A damaged collection is reported and skipped; the others open.

use quiver_engine::config::Distance;
use quiver_engine::point::{WithPayload, WithVectors};
use quiver_engine::PointId;
use serde_json::json;

use crate::common::*;

fn fill(cs: &quiver_engine::Collections, name: &str) {
    let c = create(cs, name, small_config(2, Distance::Dot, 1000, 100_000));
    c.upsert(
        (0..20)
            .map(|i| dense(i, vec![i as f32, 1.0], json!({"i": i})))
            .collect(),
    )
    .unwrap();
    c.flush().unwrap();
}

#[test]
fn flipped_byte_in_a_sealed_segment_skips_only_that_collection() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        fill(&cs, "good");
        fill(&cs, "bad");
    }
    let seg = dir.path().join("collections/bad/segments");
    let seg_dir = std::fs::read_dir(&seg)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let victim = seg_dir.join("dense-0.vec");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();

    let cs = open(dir.path());
    assert_eq!(cs.list(), vec!["good".to_string()]);
    let failed = cs.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "bad");
    assert!(failed[0].1.contains("dense-0.vec"), "{}", failed[0].1);
    assert!(matches!(
        cs.get("bad"),
        Err(quiver_engine::Error::CollectionUnavailable { .. })
    ));
    let good = cs.get("good").unwrap();
    assert_eq!(good.count(None).unwrap(), 20);
    let r = good
        .retrieve(&[PointId::Num(7)], &WithPayload::All, &WithVectors::All)
        .unwrap();
    assert_eq!(vectors_of(r[0].vectors.as_ref().unwrap()), &[7.0, 1.0]);
    // A failed collection can still be deleted and its name reused.
    assert!(cs.delete("bad").unwrap());
    fill(&cs, "bad");
}

#[test]
fn unreadable_config_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        fill(&cs, "a");
        fill(&cs, "b");
    }
    std::fs::write(dir.path().join("collections/a/config.json"), b"{not json").unwrap();
    let cs = open(dir.path());
    assert_eq!(cs.list(), vec!["b".to_string()]);
    assert_eq!(cs.failed()[0].0, "a");
    assert!(cs.failed()[0].1.contains("config.json"));
}

#[test]
fn leftover_staging_directories_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        fill(&cs, "a");
    }
    let junk = dir.path().join("collections/.trash-x-1");
    std::fs::create_dir_all(junk.join("segments")).unwrap();
    let cs = open(dir.path());
    assert!(!junk.exists());
    assert_eq!(cs.list(), vec!["a".to_string()]);
}
