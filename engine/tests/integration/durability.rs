//! Acknowledged writes survive a reopen, with many concurrent writers.

use std::sync::Arc;

use quiver_engine::config::Distance;
use quiver_engine::point::{WithPayload, WithVectors};
use quiver_engine::PointId;
use serde_json::json;

use crate::common::*;

#[test]
fn concurrent_acknowledged_upserts_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        let c = create(&cs, "w", small_config(2, Distance::Dot, 150, 100_000));
        let threads: Vec<_> = (0..6u64)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for i in 0..60u64 {
                        let id = t * 1000 + i;
                        c.upsert(vec![dense(id, vec![t as f32, i as f32], json!({"t": t}))])
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // No flush and no close: everything acknowledged is already in the WAL or sealed.
    }
    let cs = open(dir.path());
    let c = cs.get("w").unwrap();
    assert_eq!(c.count(None).unwrap(), 360);
    let want: Vec<PointId> = (0..6u64)
        .flat_map(|t| (0..60u64).map(move |i| PointId::Num(t * 1000 + i)))
        .collect();
    let got = c
        .retrieve(&want, &WithPayload::None, &WithVectors::All)
        .unwrap();
    assert_eq!(got.len(), 360);
    for r in got {
        let PointId::Num(n) = r.id else {
            unreachable!()
        };
        assert_eq!(
            vectors_of(r.vectors.as_ref().unwrap()),
            &[(n / 1000) as f32, (n % 1000) as f32]
        );
    }
}

#[test]
fn torn_wal_tail_loses_only_the_last_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        let c = create(&cs, "t", small_config(2, Distance::Dot, 1000, 100_000));
        for i in 0..5 {
            c.upsert(vec![dense(i, vec![1.0, i as f32], json!({}))])
                .unwrap();
        }
    }
    let wal_dir = dir.path().join("collections/t/wal");
    let chunk = std::fs::read_dir(&wal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = std::fs::metadata(&chunk).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&chunk)
        .unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    let cs = open(dir.path());
    assert!(cs.failed().is_empty());
    let c = cs.get("t").unwrap();
    assert_eq!(c.count(None).unwrap(), 4);
    assert!(c
        .retrieve(&[PointId::Num(4)], &WithPayload::None, &WithVectors::None)
        .unwrap()
        .is_empty());
    c.upsert(vec![dense(9, vec![1.0, 9.0], json!({}))]).unwrap();
    drop(c);
    drop(cs);
    assert_eq!(open(dir.path()).get("t").unwrap().count(None).unwrap(), 5);
}

#[test]
fn dropping_during_a_background_seal_neither_hangs_nor_loses_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        let c = create(&cs, "bg", small_config(8, Distance::Dot, 1500, 100));
        let data = random_vectors(3000, 8, 3);
        c.upsert(
            data.iter()
                .enumerate()
                .map(|(i, v)| dense(i as u64, v.clone(), json!({})))
                .collect(),
        )
        .unwrap();
        // The active segment is over its limit: the optimizer is sealing (building a graph) now.
    }
    let cs = open(dir.path());
    let c = cs.get("bg").unwrap();
    assert_eq!(c.count(None).unwrap(), 3000);
    c.flush().unwrap();
    assert_eq!(c.info().indexed_vectors_count, 3000);
}

/// `wal_config.wal_capacity_mb` sizes the log's chunk files: 1 MiB chunks rotate where the default
/// 32 MiB ones do not, and every record of every chunk is replayed on reopen.
#[test]
fn wal_capacity_sizes_the_chunk_files_and_all_replay() {
    let dim = 256; // 1 KiB of f32 per point
    let points = 2_600u64; // about 2.7 MiB of records, kept in the appendable segment
    let chunks = |root: &std::path::Path, name: &str| {
        std::fs::read_dir(root.join("collections").join(name).join("wal"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("wal-")
            })
            .count()
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let cs = open(dir.path());
        for (name, mb) in [("small", 1), ("default", 32)] {
            let mut config = small_config(dim, Distance::Dot, 1_000_000, 1_000_000);
            config.wal_config.wal_capacity_mb = mb;
            let c = create(&cs, name, config);
            for batch in 0..points / 100 {
                let rows = (0..100)
                    .map(|i| {
                        let id = batch * 100 + i;
                        dense(id, vec![id as f32; dim], json!({}))
                    })
                    .collect();
                c.upsert(rows).unwrap();
            }
        }
        assert_eq!(chunks(dir.path(), "default"), 1);
        assert!(chunks(dir.path(), "small") >= 3, "1 MiB chunks must rotate");
    }
    let cs = open(dir.path());
    for name in ["small", "default"] {
        let c = cs.get(name).unwrap();
        assert_eq!(c.count(None).unwrap(), points as usize, "{name}");
        assert_eq!(
            c.config().wal_config.wal_capacity_mb,
            if name == "small" { 1 } else { 32 }
        );
    }
}
