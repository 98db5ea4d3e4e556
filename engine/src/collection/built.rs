//! What a sealed segment was built with: per dense vector, the HNSW parameters of its graph (or that
//! it has none), its quantization and where its files are served from. Written beside the segment's
//! other files (listed and checksummed in the manifest) so that, after a PATCH and across restarts,
//! the optimizer can tell which segments the config has moved away from and rebuild them (Qdrant's
//! config-mismatch optimizer).
//!
//! A segment written before these records existed gets one derived from the config it is opened
//! under: it counts as built with that config, so an upgrade never rebuilds every segment.

use std::collections::BTreeMap;
use std::path::Path;

use quiver_storage::segment::{segment_dir, segment_file_path};
use quiver_storage::{fs as qfs, FileEntry, SegmentFile};
use serde::{Deserialize, Serialize};

use crate::config::{CollectionConfig, QuantizationConfig};
use crate::Result;

/// The [`SegmentFile::Attached`] name of the record.
pub(crate) const BUILT_ATTACHED: &str = "built";

/// File name of the record in the segment's directory.
const BUILT_FILE: &str = "built.json";

/// The settings one dense vector of a segment was built with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BuiltVector {
    /// Whether it got a graph (enough rows for `full_scan_threshold`, and `m` > 0).
    pub graph: bool,
    /// The graph's `m` (0 without a graph).
    pub m: usize,
    /// The graph's `ef_construct` (0 without a graph).
    pub ef_construct: usize,
    /// Its codes' quantization (codes come with a graph only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantizationConfig>,
    /// The vector's `on_disk`.
    pub on_disk: bool,
    /// The graph's `on_disk` (false without a graph).
    pub graph_on_disk: bool,
    /// The `m` of its value graphs (0: none are built, the segment being under
    /// `full_scan_threshold` or `payload_m` 0). `None` in records written before value graphs
    /// existed: those count as matching any config, so an upgrade rebuilds nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_m: Option<usize>,
}

/// Per dense vector name.
pub(crate) type BuiltWith = BTreeMap<String, BuiltVector>;

/// What `config` builds for the dense vector `name` with `rows` rows in a segment.
pub(crate) fn expected(config: &CollectionConfig, name: &str, rows: usize) -> BuiltVector {
    let hnsw = config.hnsw_for(name);
    let large = rows > 0 && rows >= hnsw.full_scan_threshold;
    let graph = hnsw.m > 0 && large;
    BuiltVector {
        graph,
        m: if graph { hnsw.m } else { 0 },
        ef_construct: if graph { hnsw.ef_construct } else { 0 },
        quantization: if graph {
            config.quantization_for(name).copied()
        } else {
            None
        },
        on_disk: config
            .vectors
            .get(name)
            .and_then(|p| p.on_disk)
            .unwrap_or(false),
        graph_on_disk: graph && hnsw.on_disk,
        payload_m: Some(if large { hnsw.value_graph_m() } else { 0 }),
    }
}

/// Whether a segment built as `built` differs from what `config` builds for rows of these counts
/// (dense vector name, rows). Vectors the record does not name, or the config no longer has, count
/// as matching.
pub(crate) fn mismatch<'a>(
    config: &CollectionConfig,
    built: &BuiltWith,
    rows: impl IntoIterator<Item = (&'a str, usize)>,
) -> bool {
    rows.into_iter().any(|(name, n)| {
        config.vectors.contains_key(name)
            && built.get(name).is_some_and(|b| {
                let mut want = expected(config, name, n);
                if b.payload_m.is_none() {
                    want.payload_m = None;
                }
                *b != want
            })
    })
}

/// Writes the record into segment `id`'s directory; the entry goes into the segment's file list.
pub(crate) fn write(dir: &Path, id: u64, built: &BuiltWith) -> Result<FileEntry> {
    let json = serde_json::to_vec(built).expect("a build record serialises");
    let written = qfs::atomic_write(&segment_dir(dir, id).join(BUILT_FILE), &json)?;
    Ok(FileEntry::new(
        SegmentFile::Attached {
            name: BUILT_ATTACHED.to_owned(),
        },
        segment_file_path(id, BUILT_FILE),
        written,
    ))
}

/// Reads a record written by [`write`].
pub(crate) fn read(path: &Path) -> Result<BuiltWith> {
    let bytes = std::fs::read(path).map_err(|e| quiver_storage::Error::io(path, e))?;
    let built = serde_json::from_slice(&bytes).map_err(|e| quiver_storage::Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("unreadable build record: {e}"),
    })?;
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Distance, HnswConfigDiff};

    #[test]
    fn a_changed_m_or_graph_threshold_is_a_mismatch() {
        let mut c = CollectionConfig::single(4, Distance::Dot);
        c.hnsw_config.full_scan_threshold = 10;
        let built: BuiltWith = [(String::new(), expected(&c, "", 100))].into();
        assert!(built[""].graph);
        assert!(!mismatch(&c, &built, [("", 100)]));
        // ef is a search-time setting: no rebuild.
        c.hnsw_config.ef = 7;
        assert!(!mismatch(&c, &built, [("", 100)]));
        c.vectors.get_mut("").unwrap().hnsw_config = Some(HnswConfigDiff {
            m: Some(8),
            ..HnswConfigDiff::default()
        });
        assert!(mismatch(&c, &built, [("", 100)]));
        c.vectors.get_mut("").unwrap().hnsw_config = None;
        c.hnsw_config.full_scan_threshold = 1000;
        assert!(mismatch(&c, &built, [("", 100)]));
        // Without a graph, where graphs are served from does not matter.
        let graphless: BuiltWith = [(String::new(), expected(&c, "", 100))].into();
        c.hnsw_config.on_disk = true;
        assert!(!mismatch(&c, &graphless, [("", 100)]));
        c.vectors.get_mut("").unwrap().on_disk = Some(true);
        assert!(mismatch(&c, &graphless, [("", 100)]));
        // A vector the collection no longer has is never rebuilt for.
        assert!(!mismatch(&c, &built, [("gone", 100)]));
    }

    #[test]
    fn a_changed_payload_m_is_a_mismatch_except_for_records_older_than_value_graphs() {
        let mut c = CollectionConfig::single(4, Distance::Dot);
        c.hnsw_config.full_scan_threshold = 10;
        let built: BuiltWith = [(String::new(), expected(&c, "", 100))].into();
        assert_eq!(built[""].payload_m, Some(16), "unset payload_m is m");
        c.hnsw_config.payload_m = Some(16);
        assert!(!mismatch(&c, &built, [("", 100)]));
        c.hnsw_config.payload_m = Some(0);
        assert!(mismatch(&c, &built, [("", 100)]));
        let mut old = built.clone();
        old.get_mut("").unwrap().payload_m = None;
        assert!(!mismatch(&c, &old, [("", 100)]));
        // m 0 with payload_m: no main graph, value graphs still built.
        c.hnsw_config.m = 0;
        c.hnsw_config.payload_m = Some(8);
        let b = expected(&c, "", 100);
        assert!(!b.graph);
        assert_eq!(b.payload_m, Some(8));
    }
}
