//! Snapshots through the real binary: `quiver snapshot create|list|restore|delete`, a restore into a
//! fresh data directory in a new process giving identical searches, and the fault-injection suite:
//! `quiver debug-workload` (mixed upserts, deletes, seals, vacuums, snapshots) killed with SIGKILL at
//! random moments, after which every acknowledged write must be there and the latest snapshot restore.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use quiver_engine::collection::EngineOptions;
use quiver_engine::{Collections, PointId, WithPayload, WithVectors};
use quiver_storage::snapshot::Limits;
use rand::{Rng, SeedableRng};

fn quiver(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("QUIVER_LOG", "error")
        .env("QUIVER_DETERMINISTIC", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "quiver {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn quiver_err(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("QUIVER_LOG", "error")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "quiver {args:?} unexpectedly succeeded"
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn cli_round_trip_into_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    quiver(
        &src,
        &[
            "collection",
            "create",
            "c",
            "--size",
            "6",
            "--distance",
            "dot",
            "--segment-max-points",
            "250",
        ],
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut text = String::new();
    for id in 0..900u64 {
        let v: Vec<f32> = (0..6).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        text.push_str(&format!(
            "{{\"id\": {id}, \"vector\": {v:?}, \"payload\": {{\"n\": {id}}}}}\n"
        ));
    }
    let file = dir.path().join("points.jsonl");
    std::fs::write(&file, text).unwrap();
    quiver(
        &src,
        &[
            "upsert",
            "-c",
            "c",
            "--batch-size",
            "100",
            file.to_str().unwrap(),
        ],
    );
    let created: serde_json::Value =
        serde_json::from_str(quiver(&src, &["snapshot", "create", "c"]).trim()).unwrap();
    let name = created["name"].as_str().unwrap();
    let listed: serde_json::Value =
        serde_json::from_str(quiver(&src, &["snapshot", "list", "c"]).trim()).unwrap();
    assert_eq!(listed["name"], created["name"]);
    assert_eq!(listed["checksum"], created["checksum"]);
    assert_eq!(listed["size"], created["size"]);
    let archive = src.join("snapshots").join("c").join(name);
    let checksum = created["checksum"].as_str().unwrap();

    // Restore in a new process into an empty data directory, checking the archive's checksum.
    quiver(
        &dst,
        &[
            "snapshot",
            "restore",
            archive.to_str().unwrap(),
            "-c",
            "copy",
            "--checksum",
            checksum,
        ],
    );
    let queries: Vec<Vec<f32>> = (0..100)
        .map(|_| (0..6).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    for q in &queries {
        let q = format!("{q:?}");
        let a = quiver(&src, &["search", "-c", "c", "--vector", &q]);
        let b = quiver(&dst, &["search", "-c", "copy", "--vector", &q]);
        assert!(!a.trim().is_empty());
        assert_eq!(a, b, "query {q}");
    }

    // A wrong checksum is refused and leaves the restored collection as it was.
    let err = quiver_err(
        &dst,
        &[
            "snapshot",
            "restore",
            archive.to_str().unwrap(),
            "-c",
            "copy",
            "--checksum",
            &"ab".repeat(32),
        ],
    );
    assert!(err.contains("checksum"), "{err}");
    quiver(&src, &["snapshot", "delete", "c", name]);
    assert!(quiver(&src, &["snapshot", "list", "c"]).trim().is_empty());
    let err = quiver_err(&src, &["snapshot", "delete", "c", "../../collections/c"]);
    assert!(err.contains("invalid snapshot name"), "{err}");
}

/// Expected state of each id from acknowledged writes: `Some(version)` live, `None` deleted.
type Model = BTreeMap<u64, Option<u64>>;

enum Pending {
    Upsert(Vec<(u64, u64)>),
    Delete(Vec<u64>),
}

fn apply(model: &mut Model, op: &Pending) {
    match op {
        Pending::Upsert(ps) => {
            for &(id, v) in ps {
                model.insert(id, Some(v));
            }
        }
        Pending::Delete(ids) => {
            for &id in ids {
                model.insert(id, None);
            }
        }
    }
}

fn parse_pending(line: &str) -> Option<Pending> {
    if let Some(rest) = line.strip_prefix("pending upsert ") {
        let ps = rest
            .split(' ')
            .map(|p| {
                let (id, v) = p.split_once(':').unwrap();
                (id.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        return Some(Pending::Upsert(ps));
    }
    line.strip_prefix("pending delete ")
        .map(|rest| Pending::Delete(rest.split(' ').map(|i| i.parse().unwrap()).collect()))
}

/// Whether the stored state of `id` is allowed: the acknowledged one, or the in-flight write's.
fn state_ok(id: u64, got: Option<u64>, model: &Model, inflight: Option<&Pending>) -> bool {
    let want = model.get(&id).copied().flatten();
    if got == want {
        return true;
    }
    let mut alt = model.clone();
    if let Some(op) = inflight {
        apply(&mut alt, op);
    }
    got == alt.get(&id).copied().flatten()
}

/// What a fault-injection run saw.
pub struct FaultReport {
    acked: u64,
    lost: u64,
    /// Where each kill landed: `startup`, `write`, `flush`, `vacuum`, `snapshot` or `between`.
    kills: BTreeMap<&'static str, u64>,
    /// Snapshots restored and checked after a kill.
    snapshots_restored: u64,
}

/// Kills `quiver debug-workload` `cycles` times.
pub fn fault_injection(cycles: u64, seed: u64) -> FaultReport {
    let mut kills: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut snapshots_restored = 0u64;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut model = Model::new();
    let mut acked_total = 0u64;
    let mut lost = 0u64;
    for cycle in 0..cycles {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .arg("--data-dir")
            .arg(&data)
            .args([
                "debug-workload",
                "--seed",
                &(seed * 1_000_003 + cycle).to_string(),
            ])
            .env("QUIVER_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Half the kills come at a random moment (they mostly land in the slow operations: seals,
        // vacuums, snapshots); the other half the instant the N-th write is announced, so they land
        // while that write is being logged and applied.
        let deadline = std::time::Instant::now() + Duration::from_millis(rng.random_range(20..700));
        let kill_at_write = (cycle % 2 == 1).then(|| rng.random_range(1..60u32));
        let mut lines = Vec::new();
        let mut writes_seen = 0u32;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let timeout = if kill_at_write.is_some() {
                Duration::from_secs(30)
            } else {
                left
            };
            match rx.recv_timeout(timeout) {
                Ok(line) => {
                    let is_write = line.starts_with("pending ");
                    lines.push(line);
                    if is_write {
                        writes_seen += 1;
                        if Some(writes_seen) == kill_at_write {
                            break;
                        }
                    }
                    if kill_at_write.is_none() && left.is_zero() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        lines.extend(rx.iter());
        let mut inflight: Option<Pending> = None;
        let mut last_snapshot = None;
        let mut at: &'static str = "startup";
        for line in &lines {
            at = match line.as_str() {
                "begin flush" => "flush",
                "begin vacuum" => "vacuum",
                "begin snapshot" => "snapshot",
                l if l.starts_with("pending ") => "write",
                _ => "between",
            };
            if let Some(p) = parse_pending(line) {
                inflight = Some(p);
            } else if line == "acked" {
                let op = inflight.take().expect("acked without a pending write");
                apply(&mut model, &op);
                acked_total += 1;
            } else if let Some(name) = line.strip_prefix("snapshot ") {
                last_snapshot = Some(name.to_string());
            }
        }

        let cs = Collections::open(&data, EngineOptions::default())
            .unwrap_or_else(|e| panic!("cycle {cycle}: data directory failed to reopen: {e}"));
        assert!(cs.failed().is_empty(), "cycle {cycle}: {:?}", cs.failed());
        let Ok(c) = cs.get("fault") else {
            // Killed before the collection was created.
            assert!(model.is_empty(), "cycle {cycle}: collection lost");
            continue;
        };
        *kills.entry(at).or_default() += 1;
        let (stored, differing) = check(&c, &model, inflight.as_ref(), cycle);
        lost += differing;
        // The write in flight at the kill may or may not have landed; from here on the model follows
        // what the store holds for the ids it touched.
        match &inflight {
            Some(Pending::Upsert(ps)) => {
                for &(id, _) in ps {
                    model.insert(id, stored.get(&id).copied());
                }
            }
            Some(Pending::Delete(ids)) => {
                for &id in ids {
                    model.insert(id, stored.get(&id).copied());
                }
            }
            None => {}
        }
        cs.close().unwrap();
        drop(cs);

        // The latest acknowledged snapshot restores into a fresh data directory and opens.
        if let Some(name) = last_snapshot {
            let path = data.join("snapshots").join("fault").join(&name);
            let scratch = tempfile::tempdir().unwrap();
            let other = Collections::open(scratch.path(), EngineOptions::default()).unwrap();
            let r = other
                .restore_snapshot("r", &path, None, Limits::default())
                .unwrap_or_else(|e| panic!("cycle {cycle}: snapshot {name} did not restore: {e}"));
            r.count(None).unwrap();
            snapshots_restored += 1;
            other.close().unwrap();
        }
    }
    FaultReport {
        acked: acked_total,
        lost,
        kills,
        snapshots_restored,
    }
}

/// Compares every id ever written against the model; returns what is stored (id → version) and how
/// many ids differ from every allowed state.
fn check(
    c: &quiver_engine::Collection,
    model: &Model,
    inflight: Option<&Pending>,
    cycle: u64,
) -> (BTreeMap<u64, u64>, u64) {
    let ids: Vec<PointId> = (0..2_000u64).map(PointId::Num).collect();
    let found = c
        .retrieve(&ids, &WithPayload::All, &WithVectors::All)
        .unwrap();
    let mut stored: BTreeMap<u64, u64> = BTreeMap::new();
    for r in found {
        let PointId::Num(id) = r.id else {
            panic!("numeric ids only")
        };
        let v = r.payload.as_ref().unwrap()["v"].as_u64().unwrap();
        assert_eq!(
            r.payload.as_ref().unwrap()["id"],
            serde_json::json!(id),
            "cycle {cycle}"
        );
        assert_eq!(
            r.vectors.as_ref().unwrap()[""],
            quiver_engine::Vector::Dense(vec![id as f32, v as f32, 1.0, 0.0]),
            "cycle {cycle}: point {id} is not whole"
        );
        stored.insert(id, v);
    }
    let mut lost = 0;
    for id in 0..2_000u64 {
        if !state_ok(id, stored.get(&id).copied(), model, inflight) {
            eprintln!(
                "cycle {cycle}: point {id} is {:?}, acknowledged state {:?}",
                stored.get(&id),
                model.get(&id)
            );
            lost += 1;
        }
    }
    assert_eq!(
        c.count(None).unwrap(),
        stored.len(),
        "cycle {cycle}: count disagrees with retrieve"
    );
    (stored, lost)
}

#[test]
fn fault_injection_sigkill_loses_no_acknowledged_write() {
    let cycles = std::env::var("QUIVER_FAULT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("QUIVER_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let FaultReport {
        acked,
        lost,
        kills,
        snapshots_restored,
    } = fault_injection(cycles, seed);
    let kills: Vec<String> = kills.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    println!(
        "fault injection: cycles={cycles} seed={seed} acknowledged_writes={acked} lost={lost} \
         snapshots_restored={snapshots_restored} kills_during={}",
        kills.join(",")
    );
    assert_eq!(lost, 0, "acknowledged writes lost");
    assert!(
        acked > cycles,
        "too few writes acknowledged ({acked}) to mean anything"
    );
}
