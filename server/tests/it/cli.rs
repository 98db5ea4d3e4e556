//! The command line: create, upsert, search, info, delete, and its error messages.

use std::path::Path;
use std::process::{Command, Output};

fn quiver(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("QUIVER_LOG", "warn")
        .output()
        .expect("spawn quiver")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "quiver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn create_upsert_search_info_delete() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(quiver(
        &data,
        &[
            "collection",
            "create",
            "docs",
            "--size",
            "3",
            "--distance",
            "euclid",
        ],
    ));
    assert_eq!(ok(quiver(&data, &["collection", "list"])).trim(), "docs");

    let file = dir.path().join("points.jsonl");
    let mut lines = String::new();
    for i in 0..50 {
        let color = if i % 2 == 0 { "red" } else { "blue" };
        lines.push_str(&format!(
            "{{\"id\": {i}, \"vector\": [{i}, 0, 0], \"payload\": {{\"color\": \"{color}\"}}}}\n"
        ));
    }
    std::fs::write(&file, lines).unwrap();
    ok(quiver(
        &data,
        &["upsert", "-c", "docs", file.to_str().unwrap(), "--flush"],
    ));

    let hits = ok(quiver(
        &data,
        &[
            "search",
            "-c",
            "docs",
            "--vector",
            "[10.2, 0, 0]",
            "-k",
            "3",
        ],
    ));
    let ids: Vec<u64> = hits
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, vec![10, 11, 9]);

    let filtered = ok(quiver(
        &data,
        &[
            "search",
            "-c",
            "docs",
            "--vector",
            "[10.2, 0, 0]",
            "-k",
            "2",
            "--with-payload",
            "--filter",
            r#"{"must":[{"key":"color","match":{"value":"blue"}}]}"#,
        ],
    ));
    let first: serde_json::Value = serde_json::from_str(filtered.lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], 11);
    assert_eq!(first["payload"]["color"], "blue");

    let info: serde_json::Value =
        serde_json::from_str(&ok(quiver(&data, &["collection", "info", "docs"]))).unwrap();
    assert_eq!(info["info"]["points_count"], 50);

    ok(quiver(&data, &["collection", "delete", "docs"]));
    assert_eq!(ok(quiver(&data, &["collection", "list"])).trim(), "");
}

#[test]
fn errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = quiver(&data, &["search", "-c", "missing", "--vector", "[1]"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing") && err.contains("not found"),
        "{err}"
    );

    ok(quiver(&data, &["collection", "create", "v", "--size", "2"]));
    // The CLI's default full-scan threshold is the API's: Qdrant's 10,000 KiB of vectors, here of
    // 8 bytes each.
    let info: serde_json::Value =
        serde_json::from_str(&ok(quiver(&data, &["collection", "info", "v"]))).unwrap();
    assert_eq!(
        info["config"]["hnsw_config"]["full_scan_threshold"],
        10_000 * 1024 / 8,
        "{info}"
    );
    let out = quiver(&data, &["search", "-c", "v", "--vector", "[1, 2, 3]"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("dimension"), "{err}");

    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"id\": 1, \"vector\": [1, 2]}\n{\"id\": 2, \"vector\": \"x\"}\n",
    )
    .unwrap();
    let out = quiver(&data, &["upsert", "-c", "v", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(":2: invalid point"),
        "{err}"
    );
}

#[test]
fn help_explains_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let help = ok(quiver(dir.path(), &["--help"]));
    for sub in ["serve", "collection", "upsert", "search"] {
        assert!(help.contains(sub), "--help lacks {sub}: {help}");
    }
    let help = ok(quiver(dir.path(), &["upsert", "--help"]));
    assert!(help.contains("JSON Lines"), "{help}");
    // Late chunking's flags say when it is on by default.
    let help = ok(quiver(dir.path(), &["ingest", "--help"]));
    for needle in ["--late-chunking", "--no-late-chunking", "8192"] {
        assert!(
            help.contains(needle),
            "ingest --help lacks {needle}: {help}"
        );
    }
    let out = quiver(
        dir.path(),
        &[
            "ingest",
            "--collection",
            "c",
            "--late-chunking",
            "--no-chunking",
            "x",
        ],
    );
    assert!(!out.status.success());
}

#[test]
fn aliases_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(quiver(
        &data,
        &["collection", "create", "blue", "--size", "2"],
    ));
    ok(quiver(
        &data,
        &["collection", "create", "green", "--size", "2"],
    ));
    assert_eq!(ok(quiver(&data, &["alias", "list"])), "");
    ok(quiver(&data, &["alias", "create", "prod", "blue"]));
    assert_eq!(ok(quiver(&data, &["alias", "list"])), "prod -> blue\n");
    // The alias reaches the collection, here and for a server on the same data directory.
    let info = ok(quiver(&data, &["collection", "info", "prod"]));
    assert!(info.contains("\"points_count\""), "{info}");
    ok(quiver(&data, &["alias", "create", "prod", "green"]));
    ok(quiver(&data, &["alias", "rename", "prod", "live"]));
    assert_eq!(ok(quiver(&data, &["alias", "list"])), "live -> green\n");
    assert_eq!(ok(quiver(&data, &["alias", "list", "-c", "blue"])), "");
    assert_eq!(
        ok(quiver(&data, &["alias", "list", "-c", "green"])),
        "live -> green\n"
    );
    ok(quiver(&data, &["alias", "delete", "live"]));
    assert_eq!(ok(quiver(&data, &["alias", "list"])), "");

    for (args, needle) in [
        (vec!["alias", "create", "x", "missing"], "missing"),
        (vec!["alias", "delete", "nothing"], "nothing"),
        (vec!["alias", "rename", "nothing", "y"], "nothing"),
        (vec!["alias", "create", "blue", "green"], "blue"),
    ] {
        let out = quiver(&data, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}

/// mimalloc's `arena_eager_commit` is off before its options are read at process load (so before
/// the first arena is reserved), unless `MIMALLOC_ARENA_EAGER_COMMIT` says otherwise. mimalloc's
/// verbose mode prints each option as it reads them at load.
#[cfg(target_os = "linux")]
#[test]
fn the_allocator_commits_arenas_lazily_from_the_first_allocation() {
    let option = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .arg("--version")
            .env("MIMALLOC_VERBOSE", "1")
            .envs(env.iter().copied())
            .output()
            .expect("spawn quiver");
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stderr
            .lines()
            .find(|l| l.contains("option 'arena_eager_commit'"))
            .unwrap_or_else(|| panic!("no option line in mimalloc's output: {stderr}"))
            .to_string();
        line.rsplit(':').next().unwrap().trim().to_string()
    };
    assert_eq!(option(&[]), "0");
    assert_eq!(option(&[("MIMALLOC_ARENA_EAGER_COMMIT", "1")]), "1");
}
