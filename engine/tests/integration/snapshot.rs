//! Snapshots: round trip into a fresh data directory, snapshots under concurrent writers, and restores
//! of bad archives that must leave the target collection untouched.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use quiver_engine::config::Distance;
use quiver_engine::point::{ScrollRequest, SearchRequest, Vector, WithPayload, WithVectors};
use quiver_engine::{Collections, PointId};
use quiver_storage::snapshot::Limits;
use serde_json::json;

use crate::common::*;

fn search_all(cs: &Collections, name: &str, queries: &[Vec<f32>]) -> Vec<Vec<(PointId, f32)>> {
    let c = cs.get(name).unwrap();
    queries
        .iter()
        .map(|q| {
            c.search(&SearchRequest::dense(q.clone(), 10))
                .unwrap()
                .into_iter()
                .map(|p| (p.id, p.score))
                .collect()
        })
        .collect()
}

#[test]
fn round_trip_into_a_fresh_data_dir_gives_identical_searches() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let queries = random_vectors(100, 8, 99);
    let (archive, before) = {
        let cs = open(src.path());
        let c = create(&cs, "docs", small_config(8, Distance::Cosine, 300, 100));
        let vs = random_vectors(1000, 8, 1);
        for (chunk_i, chunk) in vs.chunks(100).enumerate() {
            let pts = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let id = (chunk_i * 100 + i) as u64;
                    dense(id, v.clone(), json!({"n": id}))
                })
                .collect();
            c.upsert(pts).unwrap();
            if chunk_i == 4 {
                c.flush().unwrap();
            }
        }
        // Some deletes both in sealed segments and in the WAL tail.
        c.delete(quiver_engine::point::PointsSelector::Ids(
            (0..1000).step_by(7).map(PointId::Num).collect(),
        ))
        .unwrap();
        let d = cs.create_snapshot("docs").unwrap();
        assert_eq!(cs.list_snapshots("docs").unwrap(), vec![d.clone()]);
        let path = cs.snapshot_path("docs", &d.name).unwrap();
        (path, search_all(&cs, "docs", &queries))
    };
    let cs = open(dst.path());
    cs.restore_snapshot("copy", &archive, None, Limits::default())
        .unwrap();
    assert_eq!(search_all(&cs, "copy", &queries), before);
    drop(cs);
    // And again after a restart of the restored directory.
    let cs = open(dst.path());
    assert_eq!(search_all(&cs, "copy", &queries), before);
    assert_eq!(cs.get("copy").unwrap().count(None).unwrap(), 1000 - 143);
}

#[test]
fn snapshot_during_concurrent_upserts_holds_every_acknowledged_point_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cs = Arc::new(open(dir.path()));
    let c = create(&cs, "w", small_config(4, Distance::Dot, 200, 100_000));
    let stop = Arc::new(AtomicBool::new(false));
    // Highest id each writer has had acknowledged (ids are written in increasing order per writer).
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..3).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let (c, stop, acked) = (c.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut i = 1u64;
                while !stop.load(Ordering::Relaxed) && i < 5000 {
                    let id = t * 100_000 + i;
                    c.upsert(vec![dense(
                        id,
                        vec![id as f32, 1.0, 2.0, 3.0],
                        json!({"id": id}),
                    )])
                    .unwrap();
                    acked[t as usize].store(i, Ordering::SeqCst);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut snaps = Vec::new();
    for _ in 0..3 {
        let floor: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        let d = cs.create_snapshot("w").unwrap();
        snaps.push((floor, cs.snapshot_path("w", &d.name).unwrap()));
        c.flush().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    for (k, (floor, path)) in snaps.iter().enumerate() {
        let name = format!("r{k}");
        cs.restore_snapshot(&name, path, None, Limits::default())
            .unwrap();
        let r = cs.get(&name).unwrap();
        for (t, &hi) in floor.iter().enumerate() {
            let want: Vec<PointId> = (1..=hi)
                .map(|i| PointId::Num(t as u64 * 100_000 + i))
                .collect();
            let got = r
                .retrieve(&want, &WithPayload::All, &WithVectors::All)
                .unwrap();
            assert_eq!(
                got.len(),
                want.len(),
                "snapshot {k} writer {t}: acknowledged points missing"
            );
        }
        // Every point present is whole: its vector and payload agree with its id.
        let all = r
            .scroll(&ScrollRequest {
                filter: None,
                offset: None,
                limit: 100_000,
                with_payload: WithPayload::All,
                with_vectors: WithVectors::All,
            })
            .unwrap();
        assert!(all.next_page_offset.is_none());
        for p in all.points {
            let PointId::Num(id) = p.id else {
                panic!("numeric ids only")
            };
            assert_eq!(p.payload.as_ref().unwrap()["id"], json!(id));
            let Some(Vector::Dense(v)) = p.vectors.as_ref().unwrap().get("") else {
                panic!("point {id} has no dense vector")
            };
            assert_eq!(v, &vec![id as f32, 1.0, 2.0, 3.0], "point {id}");
        }
    }
}

#[test]
fn bad_archives_leave_the_target_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "t", small_config(2, Distance::Dot, 100, 100_000));
    c.upsert(
        (0..50)
            .map(|i| dense(i, vec![i as f32, 1.0], json!({})))
            .collect(),
    )
    .unwrap();
    let d = cs.create_snapshot("t").unwrap();
    let good = cs.snapshot_path("t", &d.name).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    c.upsert(
        (50..60)
            .map(|i| dense(i, vec![i as f32, 1.0], json!({})))
            .collect(),
    )
    .unwrap();

    let bad = dir.path().join("bad.snapshot");
    let mut flipped = bytes.clone();
    flipped[2000] ^= 0x20;
    for (what, b) in [
        ("flipped byte", flipped),
        ("truncated", bytes[..bytes.len() - 1500].to_vec()),
    ] {
        std::fs::write(&bad, &b).unwrap();
        let Err(err) = cs.restore_snapshot("t", &bad, None, Limits::default()) else {
            panic!("{what}: restore succeeded")
        };
        assert!(
            matches!(err, quiver_engine::Error::InvalidInput(_)),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("snapshot rejected"),
            "{what}: {err}"
        );
        // Same handle still works and holds everything.
        assert_eq!(cs.get("t").unwrap().count(None).unwrap(), 60, "{what}");
        c.upsert(vec![dense(1000, vec![0.0, 1.0], json!({}))])
            .unwrap();
        c.delete(quiver_engine::point::PointsSelector::Ids(vec![
            PointId::Num(1000),
        ]))
        .unwrap();
    }
    let Err(err) = cs.restore_snapshot("t", &good, Some(&"0".repeat(64)), Limits::default()) else {
        panic!("a wrong checksum was accepted")
    };
    assert!(err.to_string().contains("checksum"), "{err}");
    // No staging directories left behind.
    let leftovers: Vec<_> = std::fs::read_dir(cs.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A good restore over the existing collection replaces it with the snapshot's 50 points.
    cs.restore_snapshot("t", &good, d.checksum.as_deref(), Limits::default())
        .unwrap();
    assert_eq!(cs.get("t").unwrap().count(None).unwrap(), 50);
    assert!(
        c.upsert(vec![dense(7, vec![0.0, 1.0], json!({}))]).is_err(),
        "old handle is closed"
    );
    assert!(cs.delete_snapshot("t", &d.name).unwrap());
    assert!(cs.list_snapshots("t").unwrap().is_empty());
}

#[test]
fn full_snapshot_restores_every_collection_or_none() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let cs = open(src.path());
    for (name, n) in [("a", 30u64), ("b", 70)] {
        let c = create(&cs, name, small_config(3, Distance::Dot, 50, 100_000));
        c.upsert(
            (0..n)
                .map(|i| dense(i, vec![i as f32, 1.0, 0.5], json!({"c": name})))
                .collect(),
        )
        .unwrap();
    }
    let d = cs.create_full_snapshot().unwrap();
    assert_eq!(cs.list_full_snapshots().unwrap(), vec![d.clone()]);
    // Collection listings do not see it, and it does not see collection snapshots.
    let one = cs.create_snapshot("a").unwrap();
    assert_eq!(cs.list_snapshots("a").unwrap(), vec![one]);
    assert_eq!(cs.list_full_snapshots().unwrap().len(), 1);
    let path = cs.full_snapshot_path(&d.name).unwrap();

    let other = open(dst.path());
    let Err(err) = other.restore_any_snapshot(&path, Some("x"), None, Limits::default()) else {
        panic!("a full snapshot was restored under one name")
    };
    assert!(err.to_string().contains("full snapshot"), "{err}");
    let mut names = other
        .restore_any_snapshot(&path, None, d.checksum.as_deref(), Limits::default())
        .unwrap();
    names.sort();
    assert_eq!(names, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(other.get("a").unwrap().count(None).unwrap(), 30);
    assert_eq!(other.get("b").unwrap().count(None).unwrap(), 70);

    // A damaged full snapshot changes nothing, even for the collections staged before the damage.
    other
        .get("a")
        .unwrap()
        .upsert(vec![dense(500, vec![0.0, 0.0, 1.0], json!({}))])
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() * 3 / 4;
    bytes[at] ^= 0x10;
    let bad = dst.path().join("bad.snapshot");
    std::fs::write(&bad, &bytes).unwrap();
    assert!(other
        .restore_any_snapshot(&bad, None, None, Limits::default())
        .is_err());
    assert_eq!(other.get("a").unwrap().count(None).unwrap(), 31);
    assert_eq!(other.get("b").unwrap().count(None).unwrap(), 70);
    assert!(cs.delete_full_snapshot(&d.name).unwrap());
    assert!(!cs.delete_full_snapshot(&d.name).unwrap());
}

#[test]
fn unfinished_snapshot_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        let c = create(&cs, "u", small_config(2, Distance::Dot, 100, 100_000));
        c.upsert(vec![dense(1, vec![1.0, 0.0], json!({}))]).unwrap();
        cs.create_snapshot("u").unwrap();
    }
    let snaps = dir.path().join("snapshots");
    let junk = [
        snaps.join("u").join(".upload-0123.snapshot"),
        snaps.join("u").join("u-x.snapshot.quiver-tmp"),
        snaps.join("full-x.snapshot.quiver-tmp"),
    ];
    for j in &junk {
        std::fs::write(j, b"partial").unwrap();
    }
    std::fs::create_dir_all(snaps.join(".full-snapshot-1/inner")).unwrap();
    let cs = open(dir.path());
    for j in &junk {
        assert!(!j.exists(), "{} left behind", j.display());
    }
    assert!(!snaps.join(".full-snapshot-1").exists());
    assert_eq!(
        cs.list_snapshots("u").unwrap().len(),
        1,
        "finished snapshots stay"
    );
}
