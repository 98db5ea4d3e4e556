//! Issue 24: a seal writes the appendable segment's rows straight from memory, and a merge straight
//! from its inputs' maps, building the graph over the written file: neither holds a second copy of
//! every vector. Measured with this binary's counting allocator on the calling thread (`flush` runs
//! the seal, and a deterministic build runs the graph on that thread too).

use quiver_engine::config::{CollectionConfig, Distance};
use quiver_engine::point::{Vector, WithPayload, WithVectors};
use quiver_engine::PointId;
use quiver_storage::segment::write_dense;
use quiver_storage::SegmentFile;

use crate::alloc_count::peak_during;
use crate::common::*;

const DIM: usize = 512;
const POINTS: usize = 4_000;

fn config() -> CollectionConfig {
    let mut c = CollectionConfig::single(DIM, Distance::Dot);
    c.vectors.get_mut("").unwrap().on_disk = Some(true);
    // Dot: rows are stored as upserted (Cosine would normalise them). Small graph parameters keep the build quick; the graph is still built.
    c.hnsw_config.m = 8;
    c.hnsw_config.ef_construct = 16;
    c.hnsw_config.full_scan_threshold = 100;
    c.optimizer_config.segment_max_points = 1_000_000;
    c.optimizer_config.default_segment_number = Some(1);
    c.optimizer_config.max_segment_size = Some(1 << 30);
    c
}

fn vector_bytes(points: usize) -> usize {
    points * DIM * std::mem::size_of::<f32>()
}

#[test]
fn issue_24_seal_and_merge_hold_no_second_copy_of_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cols = open(dir.path());
    let c = cols.create("c", config()).unwrap();
    let rows = random_vectors(2 * POINTS, DIM, 24);
    let upsert = |from: usize| {
        let points = (from..from + POINTS)
            .map(|i| dense(i as u64, rows[i].clone(), serde_json::json!({})))
            .collect();
        c.upsert(points).unwrap();
    };

    upsert(0);
    let ((), seal_peak) = peak_during(|| c.flush().unwrap());
    // Before the fix the seal copied every row (1x the vectors, more while that copy grew).
    assert!(
        seal_peak < vector_bytes(POINTS) / 2,
        "the seal held {seal_peak} bytes over {} of vectors",
        vector_bytes(POINTS)
    );
    // The rows file holds exactly the bytes of the rows as upserted, in id order.
    let entry = &c.manifest().segments[0];
    let file = entry
        .file(&SegmentFile::Dense {
            vector: String::new(),
        })
        .unwrap();
    let expected = dir.path().join("expected.vec");
    let flat: Vec<f32> = rows[..POINTS].iter().flatten().copied().collect();
    write_dense(&expected, DIM, &flat, None, POINTS).unwrap();
    assert_eq!(
        std::fs::read(file.full_path(c.dir())).unwrap(),
        std::fs::read(&expected).unwrap()
    );

    // A second sealed segment brings the collection over its target of one: the flush seals it,
    // then merges both from their maps.
    upsert(POINTS);
    let ((), merge_peak) = peak_during(|| c.flush().unwrap());
    assert_eq!(c.manifest().segments.len(), 1, "the two segments merged");
    assert!(
        merge_peak < vector_bytes(2 * POINTS) / 2,
        "the seal and merge held {merge_peak} bytes over {} of vectors",
        vector_bytes(2 * POINTS)
    );
    let probe = [PointId::Num(3), PointId::Num((POINTS + 5) as u64)];
    let got = c
        .retrieve(&probe, &WithPayload::None, &WithVectors::All)
        .unwrap();
    for (record, id) in got.iter().zip([3, POINTS + 5]) {
        let Some(Vector::Dense(v)) = record.vectors.as_ref().and_then(|v| v.get("")) else {
            panic!("point {id} lost its vector");
        };
        assert_eq!(v, &rows[id]);
    }
}

/// Issue 24: a multivector seal builds its token store and the store's f16 originals from the
/// appendable segment's f16 token rows where they are, without first gathering every token as f32
/// (twice the bytes the appendable segment holds them in); the files are byte for byte what the
/// standalone builder writes from the same tokens.
#[test]
fn issue_24_a_multivector_seal_holds_no_f32_copy_of_the_tokens() {
    use quiver_engine::config::TokenStoreConfig;
    use quiver_engine::plaid::{write_originals, PlaidBuild, PlaidBuildParams, TokenMatrices};

    // 32,768 tokens: four times the 8,192 whose residuals set the buckets, which the build holds as
    // f32 whatever the seal's size.
    const DOCS: usize = 512;
    const TOKENS: usize = 64;
    const MDIM: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let cols = open(dir.path());
    let mut config = config_with_multi(MDIM, Distance::Cosine);
    config.optimizer_config.segment_max_points = 1_000_000;
    let multi = config.vectors.get_mut("colbert").unwrap();
    multi.multivector_config.as_mut().unwrap().token_store = Some(TokenStoreConfig {
        nbits: 2,
        keep_originals: false,
        rescore: true,
    });
    let c = cols.create("m", config).unwrap();
    let rows = random_vectors(DOCS * TOKENS, MDIM, 25);
    let points = (0..DOCS)
        .map(|d| {
            let mut vectors = quiver_engine::point::NamedVectors::new();
            let doc = rows[d * TOKENS..(d + 1) * TOKENS].to_vec();
            vectors.insert("colbert".into(), Vector::Multi(doc));
            quiver_engine::point::PointInsert {
                id: PointId::Num(d as u64),
                vectors,
                payload: None,
            }
        })
        .collect();
    c.upsert(points).unwrap();

    // What the appendable segment holds (normalised, rounded to f16), read back before the seal.
    let ids: Vec<PointId> = (0..DOCS as u64).map(PointId::Num).collect();
    let held = c
        .retrieve(
            &ids,
            &WithPayload::None,
            &WithVectors::Names(vec!["colbert".into()]),
        )
        .unwrap();
    let mut offsets = vec![0u64];
    let mut flat = Vec::new();
    for record in &held {
        let Some(Vector::Multi(doc)) = record.vectors.as_ref().and_then(|v| v.get("colbert"))
        else {
            panic!("point {:?} lost its tokens", record.id);
        };
        flat.extend(doc.iter().flatten());
        offsets.push(offsets.last().unwrap() + doc.len() as u64);
    }
    let f32_bytes = flat.len() * std::mem::size_of::<f32>();

    let ((), seal_peak) = peak_during(|| c.flush().unwrap());
    // Before the fix the seal gathered every token as f32: 2.2x these bytes in all (the copy grew by
    // doubling); after, 0.34x (centroids, per-token ids and codes, the buckets' sample).
    assert!(
        seal_peak < f32_bytes / 2,
        "the seal held {seal_peak} bytes over {f32_bytes} bytes of f32 tokens"
    );

    let tokens = TokenMatrices::new(&offsets, &flat, MDIM).unwrap();
    let params = PlaidBuildParams {
        nbits: 2,
        ..PlaidBuildParams::default()
    };
    let build = PlaidBuild::build(tokens, &params, &std::sync::atomic::AtomicBool::new(false));
    let expected_store = dir.path().join("expected.plaid");
    build.unwrap().write(&expected_store).unwrap();
    let expected_originals = dir.path().join("expected.f16");
    write_originals(tokens, &expected_originals).unwrap();
    let manifest = c.manifest();
    assert_eq!(manifest.segments.len(), 1);
    let attached = |prefix: &str| {
        let file = manifest.segments[0]
            .files
            .iter()
            .find(|f| matches!(&f.file, SegmentFile::Attached { name } if name == &format!("{prefix}colbert")))
            .unwrap_or_else(|| panic!("no `{prefix}colbert` file"));
        std::fs::read(file.full_path(c.dir())).unwrap()
    };
    assert!(
        attached("plaid:") == std::fs::read(&expected_store).unwrap(),
        "the sealed token store differs from the standalone build"
    );
    assert!(
        attached("plaid-f16:") == std::fs::read(&expected_originals).unwrap(),
        "the sealed originals differ from the standalone write"
    );
}
