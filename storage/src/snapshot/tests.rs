use super::*;

fn manifest() -> SnapshotManifest {
    SnapshotManifest {
        format_version: FORMAT_VERSION,
        quiver_version: "test".into(),
        collection: "c".into(),
        created_at: 0,
        config: serde_json::json!({}),
        wal_first_seq: 1,
        wal_last_seq: 0,
        files: Vec::new(),
        collections: Vec::new(),
        aliases: Default::default(),
    }
}

fn good_archive(dir: &Path) -> PathBuf {
    let path = dir.join("a.snapshot");
    let mut w = ArchiveWriter::create(&path).unwrap();
    w.add("config.json", 2, &mut &b"{}"[..]).unwrap();
    w.add("segments/seg-1/points.bin", 1000, &mut &[5u8; 1000][..])
        .unwrap();
    let info = w.finish(manifest()).unwrap();
    assert_eq!(read_checksum(&path).unwrap(), info.sha256);
    assert_eq!(file_sha256(&path).unwrap(), info.sha256);
    path
}

/// Rewrites a raw header's field and fixes its checksum, so only the intended check can fail.
fn patch_header(bytes: &mut [u8], at: usize, patch: impl FnOnce(&mut [u8])) {
    let h = &mut bytes[at..at + 512];
    patch(h);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Appends a manifest and its checksum entry the way [`ArchiveWriter::finish`] does.
fn append_manifest(tar: &mut TarWriter<Vec<u8>>, json: &[u8]) {
    tar.append(MANIFEST_ENTRY, json.len() as u64, &mut &json[..])
        .unwrap();
    let sum = format!("{}\n", hex(&Sha256::digest(json)));
    tar.append(
        MANIFEST_CHECKSUM_ENTRY,
        sum.len() as u64,
        &mut sum.as_bytes(),
    )
    .unwrap();
}

fn extract_err(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.snapshot");
    std::fs::write(&path, bytes).unwrap();
    let dest = dir.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    match extract(&path, &dest, Limits::default()) {
        Ok(_) => panic!("tampered archive was accepted"),
        Err(e @ Error::Invalid(_)) => e.to_string(),
        Err(e) => panic!("expected an invalid-snapshot error, got {e}"),
    }
}

#[test]
fn round_trip_extracts_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_archive(dir.path());
    let dest = dir.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let m = extract(&path, &dest, Limits::default()).unwrap();
    assert_eq!(m.files.len(), 2);
    assert_eq!(std::fs::read(dest.join("config.json")).unwrap(), b"{}");
    assert_eq!(
        std::fs::read(dest.join("segments/seg-1/points.bin")).unwrap(),
        vec![5u8; 1000]
    );
    assert!(!dest.join(MANIFEST_ENTRY).exists());
}

#[test]
fn tampered_archives_are_rejected_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(good_archive(dir.path())).unwrap();

    // A flipped byte in file data: the SHA-256 check names the file.
    let mut b = good.clone();
    b[512 + 512 + 512 + 10] ^= 1;
    assert!(extract_err(&b).contains("SHA-256"), "{}", extract_err(&b));

    // A flipped byte in a header: its checksum no longer matches.
    let mut b = good.clone();
    b[3] ^= 1;
    assert!(extract_err(&b).contains("header checksum"));

    // Truncated.
    assert!(extract_err(&good[..good.len() / 2]).contains("truncated"));

    // Wrong size claimed by the manifest.
    let dir2 = tempfile::tempdir().unwrap();
    let path = dir2.path().join("b.snapshot");
    let mut w = ArchiveWriter::create(&path).unwrap();
    w.add("config.json", 2, &mut &b"{}"[..]).unwrap();
    let mut tar = TarWriter::new(Vec::new());
    drop(w);
    let mut m = manifest();
    m.files = vec![SnapshotFile {
        path: "config.json".into(),
        size: 3,
        sha256: hex(&Sha256::digest(b"{}")),
    }];
    let json = serde_json::to_vec(&m).unwrap();
    tar.append("config.json", 2, &mut &b"{}"[..]).unwrap();
    append_manifest(&mut tar, &json);
    let b = tar.finish().unwrap();
    assert!(extract_err(&b).contains("manifest says 3"));

    // An extra file that the manifest does not list.
    let mut tar = TarWriter::new(Vec::new());
    m.files[0].size = 2;
    let json = serde_json::to_vec(&m).unwrap();
    tar.append("config.json", 2, &mut &b"{}"[..]).unwrap();
    tar.append("extra.bin", 1, &mut &b"x"[..]).unwrap();
    append_manifest(&mut tar, &json);
    let b = tar.finish().unwrap();
    assert!(extract_err(&b).contains("not listed in the manifest"));

    // Path traversal, absolute path, symlink and hard link entries (headers patched by hand, since our
    // writer refuses to produce them).
    let mut tar = TarWriter::new(Vec::new());
    tar.append("placeholder", 1, &mut &b"x"[..]).unwrap();
    let base = tar.finish().unwrap();
    type PatchHeader = Box<dyn Fn(&mut [u8])>;
    let cases: [(&str, PatchHeader); 4] = [
        (
            "`..`",
            Box::new(|h: &mut [u8]| {
                h[..100].fill(0);
                h[..12].copy_from_slice(b"../evil.bin\0");
            }),
        ),
        (
            "absolute path",
            Box::new(|h: &mut [u8]| {
                h[..100].fill(0);
                h[..9].copy_from_slice(b"/etc/evil");
            }),
        ),
        (
            "symbolic link",
            Box::new(|h: &mut [u8]| {
                h[156] = b'2';
                h[157..168].copy_from_slice(b"/etc/passwd");
            }),
        ),
        ("hard link", Box::new(|h: &mut [u8]| h[156] = b'1')),
    ];
    for (want, patch) in cases {
        let mut b = base.clone();
        patch_header(&mut b, 0, |h| patch(h));
        let err = extract_err(&b);
        assert!(err.contains(want), "{want}: {err}");
    }

    // No manifest at all.
    assert!(extract_err(&base).contains("no snapshot-manifest.json"));

    // A manifest without its checksum entry, and one whose checksum entry does not match.
    let json = serde_json::to_vec(&m).unwrap();
    let mut tar = TarWriter::new(Vec::new());
    tar.append("config.json", 2, &mut &b"{}"[..]).unwrap();
    tar.append(MANIFEST_ENTRY, json.len() as u64, &mut &json[..])
        .unwrap();
    let without = tar.finish().unwrap();
    assert!(extract_err(&without).contains("no snapshot-manifest.json.sha256"));
    let mut tar = TarWriter::new(Vec::new());
    tar.append("config.json", 2, &mut &b"{}"[..]).unwrap();
    tar.append(MANIFEST_ENTRY, json.len() as u64, &mut &json[..])
        .unwrap();
    let wrong = format!("{}\n", "0".repeat(64));
    tar.append(MANIFEST_CHECKSUM_ENTRY, 65, &mut wrong.as_bytes())
        .unwrap();
    let b = tar.finish().unwrap();
    assert!(extract_err(&b).contains("fails its SHA-256 check"));
}

#[test]
fn size_bound_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_archive(dir.path());
    let dest = dir.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let limits = Limits {
        max_total_bytes: 500,
        max_entries: 10,
    };
    let err = extract(&path, &dest, limits).unwrap_err();
    assert!(err.to_string().contains("more than 500 bytes"), "{err}");
}

#[test]
fn entry_paths_are_checked() {
    for bad in ["", "/a", "a/../b", "..", "a//b", "./a", "a\\b", "C:x"] {
        assert!(check_entry_path(bad).is_err(), "{bad:?}");
    }
    check_entry_path("segments/seg-1/vectors.bin").unwrap();
}

/// Every byte of an archive is covered by something: entry data by the manifest's SHA-256, headers by
/// their checksum, padding and the end marker by the zero rule, the manifest by parsing and by the
/// files it must match. So flipping any single byte, anywhere, must be rejected.
#[test]
fn a_flip_of_any_single_byte_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(good_archive(dir.path())).unwrap();
    let path = dir.path().join("t.snapshot");
    let mut accepted = Vec::new();
    for at in 0..good.len() {
        let mut b = good.clone();
        b[at] ^= 0x04;
        std::fs::write(&path, &b).unwrap();
        let dest = dir.path().join(format!("out-{at}"));
        std::fs::create_dir(&dest).unwrap();
        match extract(&path, &dest, Limits::default()) {
            Ok(_) => accepted.push(at),
            Err(Error::Invalid(_)) => {}
            Err(e) => panic!("byte {at}: expected an invalid-snapshot error, got {e}"),
        }
        std::fs::remove_dir_all(&dest).unwrap();
    }
    assert!(
        accepted.is_empty(),
        "flips accepted at offsets {accepted:?}"
    );
}

#[test]
fn trailing_data_after_the_end_marker_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = std::fs::read(good_archive(dir.path())).unwrap();
    b.extend_from_slice(b"extra");
    assert!(extract_err(&b).contains("end-of-archive"));
    // Zero blocks after the marker (what some tar writers add to fill a record) are fine.
    let mut b = std::fs::read(good_archive(dir.path())).unwrap();
    b.extend_from_slice(&[0u8; 4096]);
    let path = dir.path().join("z.snapshot");
    std::fs::write(&path, &b).unwrap();
    let dest = dir.path().join("z");
    std::fs::create_dir(&dest).unwrap();
    extract(&path, &dest, Limits::default()).unwrap();
}
