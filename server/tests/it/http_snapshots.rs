//! Snapshots over HTTP: create / list / download / delete, restore into a fresh server by upload and by
//! `serve --restore-snapshot`, and refusals (tampered archives, wrong checksums, oversized uploads,
//! locations outside the snapshot directory) that leave the target collection as it was, and recovery
//! from a URL (off by default, loopback refused unless allowed).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{vector, Client, QuiverProcess, TestDir};

const DIM: usize = 8;

fn fill(c: &Client, name: &str, n: u64) {
    c.create_single(name, DIM, "Cosine");
    for chunk in (0..n).collect::<Vec<_>>().chunks(250) {
        let points: Vec<Value> = chunk
            .iter()
            .map(|&i| json!({"id": i, "vector": vector(i, DIM), "payload": {"n": i}}))
            .collect();
        c.upsert(name, json!(points));
    }
}

/// Ids and scores of 100 searches.
fn answers(c: &Client, name: &str) -> Vec<Value> {
    (0..100u64)
        .map(|q| {
            let body = json!({"vector": vector(10_000 + q, DIM), "limit": 10});
            let hits = c.ok(
                "POST",
                &format!("/collections/{name}/points/search"),
                Some(&body),
            );
            let pairs: Vec<Value> = hits
                .as_array()
                .unwrap()
                .iter()
                .map(|h| json!([h["id"], h["score"]]))
                .collect();
            json!(pairs)
        })
        .collect()
}

fn count(c: &Client, name: &str) -> u64 {
    c.ok(
        "POST",
        &format!("/collections/{name}/points/count"),
        Some(&json!({"exact": true})),
    )["count"]
        .as_u64()
        .unwrap()
}

#[test]
fn snapshot_download_and_upload_into_a_fresh_server() {
    let a = QuiverProcess::start(&[]);
    let ca = a.client();
    fill(&ca, "docs", 1200);
    ca.ok(
        "POST",
        "/collections/docs/points/delete",
        Some(&json!({"points": [3, 5, 7]})),
    );
    let created = ca.ok("POST", "/collections/docs/snapshots?wait=true", None);
    let name = created["name"].as_str().unwrap().to_string();
    assert!(name.ends_with(".snapshot"), "{created}");
    assert_eq!(
        ca.ok("GET", "/collections/docs/snapshots", None),
        json!([created.clone()])
    );
    let (status, length, archive) = ca.download(&format!("/collections/docs/snapshots/{name}"));
    assert_eq!(status, 200);
    assert_eq!(length, Some(archive.len() as u64), "Content-Length");
    assert_eq!(created["size"], json!(archive.len()));
    let sha = format!("{:x}", Sha256::digest(&archive));
    assert_eq!(created["checksum"], json!(sha));
    let before = answers(&ca, "docs");

    // Into a fresh server, by upload with the checksum.
    let b = QuiverProcess::start(&[]);
    let cb = b.client();
    let (status, body) = cb.upload(
        &format!("/collections/restored/snapshots/upload?checksum={sha}&wait=true"),
        "snapshot",
        &archive,
    );
    assert_eq!((status, &body["result"]), (200, &json!(true)), "{body}");
    assert_eq!(answers(&cb, "restored"), before);
    assert_eq!(count(&cb, "restored"), 1197);
    // The uploaded file does not linger in the snapshot directory.
    assert_eq!(
        cb.ok("GET", "/collections/restored/snapshots", None),
        json!([])
    );

    // Deleting: gone from the listing, then 404.
    assert_eq!(
        ca.ok(
            "DELETE",
            &format!("/collections/docs/snapshots/{name}"),
            None
        ),
        json!(true)
    );
    ca.err(
        "DELETE",
        &format!("/collections/docs/snapshots/{name}"),
        None,
        404,
    );
    assert_eq!(ca.ok("GET", "/collections/docs/snapshots", None), json!([]));
}

#[test]
fn bad_archives_and_locations_are_refused_and_change_nothing() {
    let server = QuiverProcess::start(&["--max-snapshot-upload-mb", "1"]);
    let c = server.client();
    fill(&c, "t", 300);
    let created = c.ok("POST", "/collections/t/snapshots", None);
    let name = created["name"].as_str().unwrap().to_string();
    let (_, _, good) = c.download(&format!("/collections/t/snapshots/{name}"));
    // Change the collection after the snapshot, so a restore would be visible.
    fill_more(&c, "t");
    let before = answers(&c, "t");
    let unchanged = |what: &str| {
        assert_eq!(count(&c, "t"), 350, "{what}");
        assert_eq!(answers(&c, "t"), before, "{what}");
    };

    let mut flipped = good.clone();
    let at = flipped.len() / 3;
    flipped[at] ^= 0x01;
    let truncated = good[..good.len() - 700].to_vec();
    for (what, bytes) in [("flipped byte", flipped), ("truncated", truncated)] {
        let (status, body) = c.upload("/collections/t/snapshots/upload", "snapshot", &bytes);
        assert_eq!(status, 400, "{what}: {body}");
        let message = body["status"]["error"].as_str().unwrap();
        assert!(message.contains("snapshot rejected"), "{what}: {message}");
        unchanged(what);
    }
    let (status, body) = c.upload(
        &format!(
            "/collections/t/snapshots/upload?checksum={}",
            "0".repeat(64)
        ),
        "snapshot",
        &good,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["status"]["error"]
        .as_str()
        .unwrap()
        .contains("checksum"));
    unchanged("wrong checksum");
    let (status, body) = c.upload("/collections/t/snapshots/upload", "file", &good);
    assert_eq!(status, 400, "{body}");
    assert!(body["status"]["error"]
        .as_str()
        .unwrap()
        .contains("`snapshot` field"));
    let (status, body) = c.upload(
        "/collections/t/snapshots/upload",
        "snapshot",
        &vec![0u8; 3 << 20],
    );
    assert_eq!(status, 413, "{body}");
    unchanged("oversized upload");

    // Locations that leave the snapshot directory, or reach for the network.
    let outside = server
        .data_dir()
        .join("collections")
        .join("t")
        .join("config.json");
    for location in [
        "../t/x.snapshot".to_string(),
        "/etc/passwd".to_string(),
        "file:///etc/passwd".to_string(),
        format!("file://{}", outside.display()),
        format!(
            "file://{}/snapshots/t/../../collections/t/config.json",
            server.data_dir().display()
        ),
        "http://127.0.0.1:1/x.snapshot".to_string(),
        "https://example.com/x.snapshot".to_string(),
        "s3://bucket/x.snapshot".to_string(),
    ] {
        let message = c.err(
            "PUT",
            "/collections/t/snapshots/recover",
            Some(&json!({ "location": location })),
            400,
        );
        assert!(!message.is_empty(), "{location}");
        unchanged(&location);
    }
    c.err(
        "GET",
        "/collections/t/snapshots/..%2F..%2Fcollections%2Ft%2Fconfig.json",
        None,
        400,
    );

    // Recover by name, and by a file:// path inside the snapshot directory: back to 300 points.
    assert_eq!(
        c.ok(
            "PUT",
            "/collections/t/snapshots/recover",
            Some(&json!({"location": name, "checksum": created["checksum"]})),
        ),
        json!(true)
    );
    assert_eq!(count(&c, "t"), 300);
    fill_more(&c, "t");
    let inside = server.data_dir().join("snapshots").join("t").join(&name);
    c.ok(
        "PUT",
        "/collections/copy/snapshots/recover",
        Some(&json!({ "location": format!("file://{}", inside.display()) })),
    );
    assert_eq!(count(&c, "copy"), 300);
    assert_eq!(count(&c, "t"), 350);
}

fn fill_more(c: &Client, name: &str) {
    let points: Vec<Value> = (300..350u64)
        .map(|i| json!({"id": i, "vector": vector(i, DIM)}))
        .collect();
    c.upsert(name, json!(points));
}

#[test]
fn full_snapshot_restores_at_startup_and_a_bad_one_stops_startup() {
    let a = QuiverProcess::start(&[]);
    let ca = a.client();
    fill(&ca, "one", 200);
    fill(&ca, "two", 100);
    let created = ca.ok("POST", "/snapshots", None);
    let name = created["name"].as_str().unwrap().to_string();
    assert_eq!(ca.ok("GET", "/snapshots", None), json!([created.clone()]));
    let (status, length, archive) = ca.download(&format!("/snapshots/{name}"));
    assert_eq!((status, length), (200, Some(archive.len() as u64)));
    let (one, two) = (answers(&ca, "one"), answers(&ca, "two"));

    let scratch = TestDir::new();
    let file = scratch.path().join("full.snapshot");
    std::fs::write(&file, &archive).unwrap();
    let data = TestDir::new();
    let b = QuiverProcess::start_in(data.path(), &["--restore-snapshot", file.to_str().unwrap()])
        .expect("serve with --restore-snapshot starts");
    let cb = b.client();
    assert_eq!(answers(&cb, "one"), one);
    assert_eq!(answers(&cb, "two"), two);
    drop(b);

    // A damaged archive: the server refuses to start and the data directory keeps what it had.
    let mut bad = archive.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    let err = QuiverProcess::start_in(data.path(), &["--restore-snapshot", file.to_str().unwrap()])
        .err()
        .expect("a damaged snapshot must stop startup");
    assert!(err.contains("snapshot rejected"), "{err}");
    let c = QuiverProcess::start_in(data.path(), &[]).expect("serves again");
    assert_eq!(answers(&c.client(), "one"), one);
    assert_eq!(
        ca.ok("DELETE", &format!("/snapshots/{name}"), None),
        json!(true)
    );
}

/// A one-file HTTP server on loopback for recover-from-URL tests: `/ok.snapshot` is the archive,
/// `/moved` redirects to it, `/huge` claims 2 GiB, anything else is 404. Counts connections.
struct FileServer {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FileServer {
    fn start(archive: Vec<u8>) -> Self {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                let (head, body): (String, &[u8]) = match path.as_str() {
                    "/ok.snapshot" => (
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", archive.len()),
                        &archive,
                    ),
                    "/moved" => (
                        "HTTP/1.1 302 Found\r\nLocation: /ok.snapshot\r\nContent-Length: 0\r\n"
                            .into(),
                        b"",
                    ),
                    "/huge" => (
                        "HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n".into(),
                        b"",
                    ),
                    _ => (
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n".into(),
                        b"",
                    ),
                };
                let _ = stream.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
                let _ = stream.write_all(body);
            }
        });
        FileServer { port, connections }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn recover_from_a_url_only_when_allowed_and_never_from_private_addresses_by_default() {
    let a = QuiverProcess::start(&[]);
    let ca = a.client();
    fill(&ca, "docs", 400);
    let created = ca.ok("POST", "/collections/docs/snapshots", None);
    let name = created["name"].as_str().unwrap();
    let (_, _, archive) = ca.download(&format!("/collections/docs/snapshots/{name}"));
    let before = answers(&ca, "docs");
    let files = FileServer::start(archive);
    let recover = |c: &Client, location: String, checksum: Option<&Value>| {
        let mut body = json!({ "location": location });
        if let Some(sum) = checksum {
            body["checksum"] = sum.clone();
        }
        c.call("PUT", "/collections/copy/snapshots/recover", Some(&body))
    };

    // Off by default: refused with a message naming the flag, and nothing is fetched.
    let (status, body) = recover(&ca, files.url("/ok.snapshot"), None);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("--snapshot-url-recovery"),
        "{body}"
    );

    // On, but loopback is not public: 403, still nothing fetched.
    let b = QuiverProcess::start(&["--snapshot-url-recovery"]);
    let cb = b.client();
    for location in [
        files.url("/ok.snapshot"),
        format!("http://localhost:{}/ok.snapshot", files.port),
    ] {
        let (status, body) = recover(&cb, location, None);
        assert_eq!(status, 403, "{body}");
        assert!(body.to_string().contains("not a public address"), "{body}");
    }
    assert_eq!(
        files.connections(),
        0,
        "the guard must refuse before connecting"
    );
    cb.err("GET", "/collections/copy", None, 404);

    // Private addresses allowed: a redirect is followed, the checksum is checked, and the restored
    // collection answers as the original did.
    let c = QuiverProcess::start(&[
        "--snapshot-url-recovery",
        "--snapshot-url-allow-private",
        "--max-snapshot-upload-mb",
        "1",
    ]);
    let cc = c.client();
    let (status, body) = recover(&cc, files.url("/missing"), None);
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("404"), "{body}");
    let (status, body) = recover(&cc, files.url("/huge"), None);
    assert_eq!(status, 413, "{body}");
    let (status, body) = recover(&cc, files.url("/moved"), Some(&json!("0".repeat(64))));
    assert_eq!(status, 400, "{body}");
    cc.err("GET", "/collections/copy", None, 404);
    let (status, body) = recover(&cc, files.url("/moved"), Some(&created["checksum"]));
    assert_eq!((status, &body["result"]), (200, &json!(true)), "{body}");
    assert_eq!(answers(&cc, "copy"), before);
    // The download does not linger in the snapshot directory.
    assert_eq!(cc.ok("GET", "/collections/copy/snapshots", None), json!([]));
}
