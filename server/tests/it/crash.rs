//! Crash safety: `quiver upsert` is killed with SIGKILL at random moments; every write it acknowledged
//! must be there when the data directory is reopened, and it must always reopen.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use quiver_engine::collection::EngineOptions;
use quiver_engine::{Collections, PointId, WithPayload, WithVectors};
use rand::{Rng, SeedableRng};

const DIM: usize = 8;
const POINTS_PER_ROUND: u64 = 2_000;
const ROUNDS: u64 = 24;

fn vector_for(id: u64) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((id * 31 + d as u64) % 97) as f32 + 1.0)
        .collect()
}

#[test]
fn sigkill_never_loses_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let status = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "collection",
            "create",
            "c",
        ])
        .args([
            "--size",
            &DIM.to_string(),
            "--distance",
            "euclid",
            "--segment-max-points",
            "700",
        ])
        .status()
        .unwrap();
    assert!(status.success());

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut acked_ids: Vec<u64> = Vec::new();
    let mut killed_mid_write = 0;
    for round in 0..ROUNDS {
        let first = round * POINTS_PER_ROUND;
        let file = dir.path().join(format!("round{round}.jsonl"));
        let mut text = String::new();
        for id in first..first + POINTS_PER_ROUND {
            text.push_str(&format!(
                "{{\"id\": {id}, \"vector\": {:?}, \"payload\": {{\"round\": {round}}}}}\n",
                vector_for(id)
            ));
        }
        std::fs::write(&file, text).unwrap();

        let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "upsert",
                "-c",
                "c",
                "--print-acks",
            ])
            .args(["--batch-size", "20", file.to_str().unwrap()])
            .env("QUIVER_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Read acknowledgements on a thread so the kill lands at an arbitrary point, not between reads.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("acked ") {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        // Most kills land after the first acknowledgement, at a random point of the stream of batches
        // (and so sometimes inside a background seal); every sixth lands during start-up instead.
        let mut acks = Vec::new();
        if round % 6 != 5 {
            if let Ok(first) = rx.recv_timeout(Duration::from_secs(30)) {
                acks.push(first);
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        } else {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..20)));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        acks.extend(rx.try_iter());
        let last_line = acks.into_iter().max().unwrap_or(0);
        if !status.success() && last_line < POINTS_PER_ROUND {
            killed_mid_write += 1;
        }
        // Line n holds id first + n - 1.
        acked_ids.extend(first..first + last_line);

        let collections = Collections::open(&data, EngineOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: data directory failed to reopen: {e}"));
        assert!(
            collections.failed().is_empty(),
            "round {round}: {:?}",
            collections.failed()
        );
        let collection = collections.get("c").unwrap();
        let ids: Vec<PointId> = acked_ids.iter().map(|&i| PointId::Num(i)).collect();
        let found = collection
            .retrieve(&ids, &WithPayload::None, &WithVectors::All)
            .unwrap();
        assert_eq!(
            found.len(),
            ids.len(),
            "round {round}: acknowledged points lost"
        );
        for record in found.iter().step_by(97) {
            let PointId::Num(id) = record.id else {
                unreachable!()
            };
            let vectors = record.vectors.as_ref().unwrap();
            assert_eq!(
                vectors[""],
                quiver_engine::Vector::Dense(vector_for(id)),
                "round {round}"
            );
        }
        collections.close().unwrap();
    }
    assert!(
        killed_mid_write >= 10,
        "only {killed_mid_write} kills landed mid-write"
    );
}
