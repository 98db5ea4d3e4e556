//! Sealing, vacuuming and merging: turning in-memory rows into immutable indexed segments, rewriting
//! segments whose tombstones pass the threshold, and merging the smallest sealed segments while there
//! are more than the target number.
//!
//! Invariant: the stored manifest describes the state after exactly the WAL records `<= wal_seq`. A seal
//! freezes the active segment and snapshots every tombstone bitmap under the writer lock at one
//! sequence number, so the segments and tombstone generations it writes match `wal_seq` exactly;
//! records after it are replayed on open against that state. A vacuum keeps `wal_seq` and drops only
//! the tombstones already persisted, so the same holds. A merge is a vacuum of several segments into
//! one: it too keeps `wal_seq` and copies only the rows live as persisted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Mutex, RwLockReadGuard};
use quiver_storage::segment::{
    open_segment, segment_dir, segment_file_path, write_deleted_generation, write_segment,
    DenseColumn, DenseRows, MultiColumn, SegmentContent,
};
use quiver_storage::{Bitmap, FileEntry, Manifest, PointId, SegmentEntry, SegmentFile};

use super::built::{self, BuiltWith, BUILT_ATTACHED};
use super::field_index;
use super::progress::{OptimizationKind, SegmentRef};
use super::segment::{MemData, MemSegment, Sealed, SealedDense, SealedMulti, SealedVector, View};
use super::state::{SegmentSet, Shared};
use super::value_graphs;
use crate::config::{CollectionConfig, Residency};
use crate::index::hnsw::{build_graph, write_graph, GraphView, HnswBuildParams};
use crate::index::prefix::{prefix_rows, write_prefix_file, PrefixFile};
use crate::index::VectorSlab;
use crate::payload_schema::PayloadSchema;
use crate::plaid::{
    write_originals, PlaidBuild, PlaidBuildParams, PlaidIndex, TokenOriginals, TokenRows,
};
use crate::quantization::{write_codes_of, CodesFile};
use crate::sparse::index::{write_index, SparseIndexFile};
use crate::sparse::rows::SparseRows;
use crate::Result;

/// Prefix of the [`SegmentFile::Attached`] name of a multi-vector's token store; the vector name
/// follows it.
const PLAID_ATTACHED_PREFIX: &str = "plaid:";
/// The f16 originals of a token store (`token_store.rescore`), beside its `plaid:` file.
const PLAID_ORIGINALS_ATTACHED_PREFIX: &str = "plaid-f16:";

/// Prefix of the [`SegmentFile::Attached`] name of a dense vector's Matryoshka prefix rows (the rows
/// its graph indexes); the vector name follows it.
const PREFIX_ATTACHED_PREFIX: &str = "prefix:";

/// Prefix of the [`SegmentFile::Attached`] name of a dense vector's quantized codes; the vector name
/// follows it.
const CODES_ATTACHED_PREFIX: &str = "codes:";
/// Prefix of the [`SegmentFile::Attached`] name of a sparse vector's inverted index; the vector
/// name follows it.
const SPARSE_ATTACHED_PREFIX: &str = "sparse:";

/// Rows picked out of segments, ready to be written as a new one. Dense rows, the bulk of a segment,
/// are not copied: each is read from its source as the file is written (see [`RowSource`]), so a
/// seal or merge never holds a second copy of every vector.
struct Extracted {
    ids: Vec<PointId>,
    payloads: Vec<Vec<u8>>,
    /// Where each point is read from: its source (an index into the sources the rows were picked
    /// from) and its offset there.
    from: Vec<(u32, u32)>,
    dense: Vec<ExtractedDense>,
    multi: Vec<ExtractedMulti>,
    /// One row per point (in `ids` order) of each sparse vector name.
    sparse: Vec<(String, SparseRows)>,
}

/// A dense vector of a segment being written.
struct ExtractedDense {
    name: String,
    dim: usize,
    /// Position in `ids` of the point of each row.
    row_points: Vec<u32>,
    /// Where each row is: its source (an index into the sources the rows were picked from) and its
    /// row there.
    from: Vec<(u32, u32)>,
}

/// A multi-vector of a segment being written: its token counts only, the rows stay in the sources.
struct ExtractedMulti {
    name: String,
    dim: usize,
    /// `points + 1` token offsets.
    offsets: Vec<u64>,
}

/// One multi-vector's token rows of a segment being written, read a point at a time from the sources
/// its points were picked from: the raw column, the token store and its originals are written from
/// them without a gathered copy (which would be f32, twice the appendable segment's f16 tokens).
struct SourcedTokens<'a, 'b> {
    name: &'a str,
    dim: usize,
    offsets: &'a [u64],
    from: &'a [(u32, u32)],
    sources: &'a [RowSource<'b>],
}

impl TokenRows for SourcedTokens<'_, '_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn offsets(&self) -> &[u64] {
        self.offsets
    }

    fn point_rows<'s>(&'s self, i: usize, buf: &'s mut Vec<f32>) -> &'s [f32] {
        if self.offsets[i] == self.offsets[i + 1] {
            return &[];
        }
        let (source, off) = self.from[i];
        self.sources[source as usize]
            .multi_rows_into(self.name, off, buf)
            .unwrap_or(&[])
    }
}

impl ExtractedMulti {
    fn tokens<'a, 'b>(
        &'a self,
        from: &'a [(u32, u32)],
        sources: &'a [RowSource<'b>],
    ) -> SourcedTokens<'a, 'b> {
        SourcedTokens {
            name: &self.name,
            dim: self.dim,
            offsets: &self.offsets,
            from,
            sources,
        }
    }

    fn num_tokens(&self) -> u64 {
        self.offsets[self.offsets.len() - 1]
    }
}

/// Where the rows of a segment being written are read from, one per input segment: a frozen
/// appendable segment's memory (under its data lock, which no writer takes once it is frozen) or a
/// sealed segment's files. Neither holds a tombstone lock, so deletes go on while rows are written.
enum RowSource<'a> {
    Mem(RwLockReadGuard<'a, MemData>),
    Sealed(&'a Sealed),
}

impl RowSource<'_> {
    fn dense(&self, name: &str) -> Option<VectorSlab<'_>> {
        match self {
            RowSource::Mem(data) => data.dense.get(name).map(|c| VectorSlab {
                data: &c.data,
                dim: c.dim,
            }),
            RowSource::Sealed(s) => s.dense(name).map(|d| VectorSlab {
                data: d.rows.rows(),
                dim: d.rows.dim(),
            }),
        }
    }

    fn multi_rows_into<'s>(
        &'s self,
        name: &str,
        off: u32,
        buf: &'s mut Vec<f32>,
    ) -> Option<&'s [f32]> {
        match self {
            RowSource::Mem(data) => data.multi_rows_into(name, off, buf),
            RowSource::Sealed(s) => s.multi_rows_into(name, off, buf),
        }
    }
}

impl Extracted {
    /// Picks the given rows, each a source index, its view and an offset in it, in this order: rows
    /// of several segments concatenate into one (a merge), so the caller orders them by id as a
    /// segment file requires. Dense and token rows are later read from the sources with the same
    /// indexes.
    fn from_rows(config: &CollectionConfig, rows: &[(u32, &View<'_>, u32)]) -> Self {
        let mut ex = Extracted {
            ids: Vec::with_capacity(rows.len()),
            payloads: Vec::with_capacity(rows.len()),
            from: rows.iter().map(|&(source, _, off)| (source, off)).collect(),
            dense: Vec::new(),
            multi: Vec::new(),
            sparse: config
                .sparse_vectors
                .keys()
                .map(|name| (name.clone(), SparseRows::default()))
                .collect(),
        };
        for (name, p) in &config.vectors {
            if p.multivector_config.is_some() {
                ex.multi.push(ExtractedMulti {
                    name: name.clone(),
                    dim: p.size,
                    offsets: vec![0],
                });
            } else {
                ex.dense.push(ExtractedDense {
                    name: name.clone(),
                    dim: p.size,
                    row_points: Vec::new(),
                    from: Vec::new(),
                });
            }
        }
        for (i, &(source, view, off)) in rows.iter().enumerate() {
            ex.ids.push(view.id(off));
            let pl = serde_json::to_vec(&*view.payload(off)).expect("a JSON map serialises");
            ex.payloads.push(pl);
            for d in ex.dense.iter_mut() {
                // A column of another dimension is a deleted vector's, under a name since reused.
                if let Some(v) = view.dense(&d.name).filter(|v| v.slab.dim == d.dim) {
                    if let Some(r) = v.point_to_row(off) {
                        d.from.push((source, r));
                        d.row_points.push(i as u32);
                    }
                }
            }
            for m in ex.multi.iter_mut() {
                let len = view.multi_len(&m.name, m.dim, off) as u64;
                m.offsets.push(m.num_tokens() + len);
            }
            for (name, rows) in ex.sparse.iter_mut() {
                rows.push(view.sparse_row(name, off));
            }
        }
        ex
    }

    /// Writes the segment's files, the dense and token rows read from `sources` (those
    /// [`Extracted::from_rows`] was given). A multi-vector whose token store is its only copy gets no
    /// raw column (the caller builds the store).
    fn write(
        &self,
        config: &CollectionConfig,
        sources: &[RowSource<'_>],
        dir: &Path,
        id: u64,
    ) -> Result<SegmentEntry> {
        let n = self.ids.len();
        let deleted = Bitmap::new(n);
        let slabs: Vec<Vec<Option<VectorSlab<'_>>>> = self
            .dense
            .iter()
            .map(|d| sources.iter().map(|s| s.dense(&d.name)).collect())
            .collect();
        let readers: Vec<_> = self
            .dense
            .iter()
            .zip(&slabs)
            .map(|(d, slabs)| {
                move |i: usize| {
                    let (source, row) = d.from[i];
                    slabs[source as usize]
                        .expect("rows are picked from sources that have the vector")
                        .row(row)
                }
            })
            .collect();
        let multi: Vec<SourcedTokens<'_, '_>> = self
            .multi
            .iter()
            .filter(|m| !compressed_only(config, &m.name, m.num_tokens()))
            .map(|m| m.tokens(&self.from, sources))
            .collect();
        let content = SegmentContent {
            ids: &self.ids,
            payloads: &self.payloads,
            dense: self
                .dense
                .iter()
                .zip(&readers)
                .map(|(d, row)| DenseColumn {
                    name: &d.name,
                    dim: d.dim,
                    rows: DenseRows::Each {
                        count: d.from.len(),
                        row,
                    },
                    row_points: (d.row_points.len() != n).then_some(d.row_points.as_slice()),
                })
                .collect(),
            multi: multi
                .iter()
                .map(|tokens| MultiColumn {
                    name: tokens.name,
                    rows: tokens,
                })
                .collect(),
            deleted: &deleted,
        };
        Ok(write_segment(dir, id, &content)?)
    }
}

/// Whether a sealed segment keeps this multi-vector only in its token store.
fn compressed_only(config: &CollectionConfig, name: &str, num_tokens: u64) -> bool {
    num_tokens > 0 && config.token_store(name).is_some_and(|t| !t.keep_originals)
}

/// `live` (a frozen segment's live offsets, in id order) cut into the id ranges a seal writes as
/// segments: each at most `segment_max_points` points and, where the collection seals by bytes, each
/// cut once it holds `indexing_threshold` KiB of vectors (counted as the seal trigger counts them),
/// with a remainder under the threshold joining the part before it. Every part is then one the
/// threshold would have sealed on its own (one to two thresholds' worth), so each is indexed as
/// the threshold promises; and a backlog that writers piled up while the optimizer was busy is sealed
/// in segments of that size, its token stores each trained on a threshold's tokens rather than all of
/// them at once (training grows as tokens × √tokens).
fn seal_parts<'a>(config: &CollectionConfig, data: &MemData, live: &'a [u32]) -> Vec<&'a [u32]> {
    let max_points = config.optimizer_config.segment_max_points.max(1);
    let max_bytes = config
        .indexing_threshold_kib()
        .map_or(usize::MAX, |kib| kib.saturating_mul(1024));
    let mut cuts = vec![0];
    let mut bytes = 0usize;
    for (i, &off) in live.iter().enumerate() {
        bytes = bytes.saturating_add(data.point_vector_bytes(off));
        let start = cuts[cuts.len() - 1];
        if i + 1 - start == max_points || bytes >= max_bytes {
            cuts.push(i + 1);
            bytes = 0;
        }
    }
    let last = cuts[cuts.len() - 1];
    if last < live.len() {
        let before = cuts[cuts.len().saturating_sub(2)];
        // The remainder is under both limits: it joins the part before it if that stays within
        // `segment_max_points` (that part was then cut by bytes).
        if cuts.len() > 1 && live.len() - before <= max_points {
            cuts.pop();
        }
        cuts.push(live.len());
    }
    cuts.windows(2).map(|w| &live[w[0]..w[1]]).collect()
}

/// A frozen segment and, when it had live points, the entry written for it and the old offset of each
/// new row.
type Built = (Arc<MemSegment>, Option<(SegmentEntry, Vec<u32>)>);

/// Opens a sealed segment listed in the manifest, with its graphs, each file served from memory or
/// from its map as the collection's config says. Files of vectors the segment does not hold for the
/// current config (deleted vectors, until a rewrite drops them) are left unopened.
pub(crate) fn open_sealed(
    dir: &Path,
    entry: &SegmentEntry,
    config: &CollectionConfig,
) -> Result<Sealed> {
    let holds = |name: &str| config.segment_holds(name, entry.id);
    // `memmap_threshold`: a segment whose largest vector passes it is served from its maps.
    let mapped = config
        .optimizer_config
        .memmap_due(largest_vector_bytes(entry));
    let vector_residency = |name: &str| sealed_vector_residency(config, mapped, name);
    let files = open_segment(dir, entry, &|name| {
        if holds(name) {
            vector_residency(name)
        } else {
            Residency::Mapped
        }
    })?;
    let mut vectors: BTreeMap<String, SealedVector> = files
        .dense
        .into_iter()
        .filter(|(name, _)| holds(name))
        .map(|(name, rows)| {
            let dense = SealedDense {
                rows,
                graph: None,
                prefix: None,
                codes: None,
                value_graphs: Vec::new(),
            };
            (name, SealedVector::Dense(dense))
        })
        .collect();
    for (name, rows) in files.multi.into_iter().filter(|(name, _)| holds(name)) {
        let multi = SealedMulti {
            rows: Some(rows),
            tokens: None,
        };
        vectors.insert(name, SealedVector::Multi(multi));
    }
    let unlisted = |vector: &str| quiver_storage::Error::Corrupt {
        path: segment_dir(dir, entry.id),
        reason: format!("an index file names vector `{vector}`, which the segment does not store"),
    };
    let mut field_indexes = Vec::new();
    let mut built = None;
    let mut originals = Vec::new();
    // Per vector: its value graphs' table (and where it was read from) and graphs by number.
    let mut value_tables = Vec::new();
    let mut value_graph_files: BTreeMap<String, BTreeMap<usize, GraphView>> = BTreeMap::new();
    for f in &entry.files {
        let path = f.full_path(dir);
        match &f.file {
            SegmentFile::Attached { name } if value_graphs::parse_attached(name).is_some() => {
                match value_graphs::parse_attached(name) {
                    Some(value_graphs::Attached::Table(v)) if holds(v) => {
                        let blocks = value_graphs::read_table(&path)?;
                        value_tables.push((v.to_owned(), path, blocks));
                    }
                    Some(value_graphs::Attached::Graph(j, v)) if holds(v) => {
                        let graph = GraphView::open_as(&path, config.graph_residency(v))?;
                        value_graph_files
                            .entry(v.to_owned())
                            .or_default()
                            .insert(j, graph);
                    }
                    _ => {}
                }
            }
            SegmentFile::Attached { name } if name == BUILT_ATTACHED => {
                built = Some(built::read(&path)?);
            }
            SegmentFile::Attached { name }
                if field_index::persist::parse_attached(name).is_some() =>
            {
                let (field, kind) =
                    field_index::persist::parse_attached(name).expect("matched by the guard");
                let index = field_index::persist::open(&path, kind, entry.num_points as usize)?;
                field_indexes.push((field.to_owned(), kind, index));
            }
            SegmentFile::Graph { vector } if !holds(vector) => {}
            SegmentFile::Attached { name }
                if [
                    PLAID_ATTACHED_PREFIX,
                    PLAID_ORIGINALS_ATTACHED_PREFIX,
                    CODES_ATTACHED_PREFIX,
                    SPARSE_ATTACHED_PREFIX,
                    PREFIX_ATTACHED_PREFIX,
                ]
                .iter()
                .any(|p| name.strip_prefix(p).is_some_and(|v| !holds(v))) => {}
            SegmentFile::Graph { vector } => {
                let graph = GraphView::open_as(&path, config.graph_residency(vector))?;
                match vectors.get_mut(vector) {
                    Some(SealedVector::Dense(d)) => d.graph = Some(graph),
                    _ => return Err(unlisted(vector).into()),
                }
            }
            SegmentFile::Attached { name } => {
                if let Some(vector) = name.strip_prefix(PLAID_ORIGINALS_ATTACHED_PREFIX) {
                    originals.push((vector.to_owned(), TokenOriginals::open(&path)?));
                } else if let Some(vector) = name.strip_prefix(PLAID_ATTACHED_PREFIX) {
                    let tokens = PlaidIndex::open(&path)?;
                    // A name kept only in its token store has no rows file.
                    let entry = vectors.entry(vector.to_owned()).or_insert_with(|| {
                        SealedVector::Multi(SealedMulti {
                            rows: None,
                            tokens: None,
                        })
                    });
                    match entry {
                        SealedVector::Multi(m) => m.tokens = Some(tokens),
                        SealedVector::Dense(_) | SealedVector::Sparse(_) => {
                            return Err(unlisted(vector).into())
                        }
                    }
                } else if let Some(vector) = name.strip_prefix(CODES_ATTACHED_PREFIX) {
                    let residency = match config.codes_residency(vector) {
                        Residency::InMemory if mapped && !always_ram(config, vector) => {
                            Residency::Mapped
                        }
                        r => r,
                    };
                    let codes = CodesFile::open_as(&path, residency)?;
                    match vectors.get_mut(vector) {
                        Some(SealedVector::Dense(d)) if codes.len() == d.rows.num_rows() => {
                            d.codes = Some(codes)
                        }
                        _ => return Err(unlisted(vector).into()),
                    }
                } else if let Some(vector) = name.strip_prefix(SPARSE_ATTACHED_PREFIX) {
                    let residency = config
                        .sparse(vector)
                        .map(|p| p.residency())
                        .ok_or_else(|| unlisted(vector))?;
                    let index = SparseIndexFile::open_as(&path, residency)?;
                    vectors.insert(vector.to_owned(), SealedVector::Sparse(index));
                } else if let Some(vector) = name.strip_prefix(PREFIX_ATTACHED_PREFIX) {
                    let prefix = PrefixFile::open_as(&path, vector_residency(vector))?;
                    match vectors.get_mut(vector) {
                        Some(SealedVector::Dense(d)) => d.prefix = Some(prefix),
                        _ => return Err(unlisted(vector).into()),
                    }
                }
            }
            SegmentFile::Points
            | SegmentFile::Deleted { .. }
            | SegmentFile::Dense { .. }
            | SegmentFile::Multi { .. } => {}
        }
    }
    for (vector, path, blocks) in value_tables {
        let graphs = value_graph_files.remove(&vector).unwrap_or_default();
        match vectors.get_mut(&vector) {
            Some(SealedVector::Dense(d)) => {
                d.value_graphs = value_graphs::assemble(&path, blocks, graphs, d.rows.num_rows())?;
            }
            _ => return Err(unlisted(&vector).into()),
        }
    }
    if let Some(vector) = value_graph_files.keys().next() {
        return Err(quiver_storage::Error::Corrupt {
            path: segment_dir(dir, entry.id),
            reason: format!("value graphs of vector `{vector}` are listed without their table"),
        }
        .into());
    }
    // Originals attach to their token store once every file is read, whatever the listing's order.
    for (vector, o) in originals {
        match vectors.get_mut(&vector) {
            Some(SealedVector::Multi(SealedMulti {
                tokens: tokens @ Some(_),
                ..
            })) => {
                let store = tokens.take().expect("matched Some");
                *tokens =
                    Some(
                        store
                            .with_originals(o)
                            .map_err(|e| quiver_storage::Error::Corrupt {
                                path: segment_dir(dir, entry.id),
                                reason: format!("vector `{vector}`: {e}"),
                            })?,
                    );
            }
            _ => return Err(unlisted(&vector).into()),
        }
    }
    let deleted = files.deleted;
    // A segment written before build records existed counts as built with this config.
    let built = built.unwrap_or_else(|| {
        vectors
            .iter()
            .filter_map(|(name, v)| match v {
                SealedVector::Dense(d) => Some((
                    name.clone(),
                    built::expected(config, name, d.rows.num_rows()),
                )),
                SealedVector::Multi(_) | SealedVector::Sparse(_) => None,
            })
            .collect()
    });
    let sealed = Sealed {
        id: entry.id,
        persisted: Mutex::new(deleted.clone()),
        deleted: parking_lot::RwLock::new(deleted),
        points: files.points,
        vectors,
        remove_on_drop: Default::default(),
        dir: segment_dir(dir, entry.id),
        field_indexes: Default::default(),
        built,
        #[cfg(test)]
        payload_reads: Default::default(),
    };
    for (field, kind, index) in field_indexes {
        sealed.attach_field_index(&field, kind, index);
    }
    Ok(sealed)
}

/// Where a sealed segment serves a vector's rows from: its maps when the segment passes
/// `memmap_threshold` (`mapped`), else as the vector's `on_disk` says.
fn sealed_vector_residency(config: &CollectionConfig, mapped: bool, name: &str) -> Residency {
    if mapped {
        Residency::Mapped
    } else {
        config.vector_residency(name)
    }
}

/// Whether a vector's codes are kept in memory whatever else is mapped.
fn always_ram(config: &CollectionConfig, name: &str) -> bool {
    config
        .quantization_for(name)
        .is_some_and(|q| q.always_ram())
}

/// Bytes of the largest vector file (dense rows or token rows) of a segment: the measure
/// `memmap_threshold` compares with.
fn largest_vector_bytes(entry: &SegmentEntry) -> u64 {
    entry
        .files
        .iter()
        .filter(|f| {
            matches!(
                f.file,
                SegmentFile::Dense { .. } | SegmentFile::Multi { .. }
            )
        })
        .map(|f| f.size)
        .max()
        .unwrap_or(0)
}

impl Shared {
    /// Builds and writes the HNSW graph of every dense vector of a written segment that is large
    /// enough, and its value graphs (one per value of an indexed field of `schema` that enough of the
    /// points of `payloads` hold); records what each dense vector was built with in `built`.
    fn build_graphs(
        &self,
        config: &CollectionConfig,
        entry: &SegmentEntry,
        schema: &PayloadSchema,
        payloads: &[Vec<u8>],
        built: &mut BuiltWith,
    ) -> Result<Vec<FileEntry>> {
        // Read once to build: no need to copy the rows into memory first.
        let files = open_segment(&self.dir, entry, &|_| Residency::Mapped)?;
        let mut out = Vec::new();
        for (i, (name, dense)) in files.dense.iter().enumerate() {
            let hnsw = config.hnsw_for(name);
            let record = built::expected(config, name, dense.num_rows());
            let graph = record.graph;
            let value_m = record.payload_m.unwrap_or(0);
            built.insert(name.clone(), record);
            let blocks = if value_m > 0 {
                value_graphs::blocks(
                    schema,
                    payloads,
                    &|p| dense.point_to_row(p),
                    hnsw.full_scan_threshold,
                    graph.then_some(dense.num_rows()),
                )
            } else {
                Vec::new()
            };
            if !graph && blocks.is_empty() {
                continue;
            }
            let params = HnswBuildParams {
                m: hnsw.m,
                ef_construct: hnsw.ef_construct,
                deterministic: self.options.deterministic,
                threads: self.options.build_threads,
            };
            let distance = config.vector(name)?.distance;
            let full = VectorSlab {
                data: dense.rows(),
                dim: dense.dim(),
            };
            // A Matryoshka-bound vector is walked on its prefix: the graphs are built over the prefix
            // rows, which are kept beside them for searches.
            let prefix_rows = config
                .index_dims(name)
                .map(|dims| (dims, prefix_rows(distance, full, dims)));
            let slab = match &prefix_rows {
                Some((dims, rows)) => VectorSlab {
                    data: rows,
                    dim: *dims,
                },
                None => full,
            };
            if graph {
                let built_graph = build_graph(slab, distance, &params, &self.stop)?;
                // Codes are what the graph walk scores with, so a vector gets them with its graph,
                // of the rows the graph links: a Matryoshka binding's prefix rows.
                if let Some(q) = config.quantization_for(name) {
                    let file_name = format!("codes-{i}.q");
                    let path = segment_dir(&self.dir, entry.id).join(&file_name);
                    let written = write_codes_of(&path, q, slab)?;
                    out.push(FileEntry::new(
                        SegmentFile::Attached {
                            name: format!("{CODES_ATTACHED_PREFIX}{name}"),
                        },
                        segment_file_path(entry.id, &file_name),
                        written,
                    ));
                }
                let file_name = format!("graph-{i}.hnsw");
                let written = write_graph(
                    &segment_dir(&self.dir, entry.id).join(&file_name),
                    &built_graph,
                )?;
                out.push(FileEntry::new(
                    SegmentFile::Graph {
                        vector: name.clone(),
                    },
                    segment_file_path(entry.id, &file_name),
                    written,
                ));
            }
            if let Some((dims, rows)) = &prefix_rows {
                let file_name = format!("prefix-{i}.f32");
                let path = segment_dir(&self.dir, entry.id).join(&file_name);
                let written = write_prefix_file(&path, rows, *dims)?;
                out.push(FileEntry::new(
                    SegmentFile::Attached {
                        name: format!("{PREFIX_ATTACHED_PREFIX}{name}"),
                    },
                    segment_file_path(entry.id, &file_name),
                    written,
                ));
            }
            if !blocks.is_empty() {
                let value_params = HnswBuildParams {
                    m: value_m,
                    ..params
                };
                out.extend(value_graphs::build_and_write(
                    &self.dir,
                    entry.id,
                    i,
                    name,
                    blocks,
                    slab,
                    distance,
                    &value_params,
                    &self.stop,
                )?);
            }
        }
        Ok(out)
    }

    /// Builds and writes the token store (PLAID) of every multi-vector name with tokens in `ex`. Only
    /// for Cosine: the store's centroids and decompressed tokens are unit length, so its MaxSim ranks
    /// Dot and Euclid fields differently from their raw scores; those are scanned exactly.
    fn build_token_stores(
        &self,
        config: &CollectionConfig,
        id: u64,
        ex: &Extracted,
        sources: &[RowSource<'_>],
    ) -> Result<Vec<FileEntry>> {
        let mut out = Vec::new();
        for (i, m) in ex.multi.iter().enumerate() {
            let name = &m.name;
            let Some(store) = config.token_store(name) else {
                continue;
            };
            if m.num_tokens() == 0 {
                continue;
            }
            let tokens = m.tokens(&ex.from, sources);
            // The params carry a fixed seed, so a seal of the same rows builds the same store.
            let params = PlaidBuildParams {
                nbits: store.nbits,
                ..PlaidBuildParams::default()
            };
            let build = PlaidBuild::build(&tokens, &params, &self.stop)?;
            let file_name = format!("tokens-{i}.plaid");
            let written = build.write(&segment_dir(&self.dir, id).join(&file_name))?;
            out.push(FileEntry::new(
                SegmentFile::Attached {
                    name: format!("{PLAID_ATTACHED_PREFIX}{name}"),
                },
                segment_file_path(id, &file_name),
                written,
            ));
            if store.rescore && !store.keep_originals {
                let file_name = format!("tokens-{i}.f16");
                let written =
                    write_originals(&tokens, &segment_dir(&self.dir, id).join(&file_name))?;
                out.push(FileEntry::new(
                    SegmentFile::Attached {
                        name: format!("{PLAID_ORIGINALS_ATTACHED_PREFIX}{name}"),
                    },
                    segment_file_path(id, &file_name),
                    written,
                ));
            }
        }
        Ok(out)
    }

    /// Writes the inverted index of every sparse vector name in `ex`.
    fn write_sparse_indexes(&self, id: u64, ex: &Extracted) -> Result<Vec<FileEntry>> {
        let mut out = Vec::new();
        for (i, (name, rows)) in ex.sparse.iter().enumerate() {
            let file_name = format!("sparse-{i}.idx");
            let written = write_index(&segment_dir(&self.dir, id).join(&file_name), rows)?;
            out.push(FileEntry::new(
                SegmentFile::Attached {
                    name: format!("{SPARSE_ATTACHED_PREFIX}{name}"),
                },
                segment_file_path(id, &file_name),
                written,
            ));
        }
        Ok(out)
    }

    /// Writes `ex` as a new segment with its indexes and build record, all for `config`; its dense
    /// rows are read from `sources`.
    fn write_new_segment(
        &self,
        config: &CollectionConfig,
        manifest: &mut Manifest,
        ex: &Extracted,
        sources: &[RowSource<'_>],
    ) -> Result<SegmentEntry> {
        let id = manifest.next_segment_id;
        manifest.next_segment_id += 1;
        self.log_phase(id, "extracted");
        let mut entry = ex.write(config, sources, &self.dir, id)?;
        self.log_phase(id, "rows written");
        let mut record = BuiltWith::new();
        // The schema as of now: an index created after this read is built for the segment once it is
        // published (creating one waits for the optimizer lock this runs under); its value graphs
        // come with the segment's next rewrite.
        let schema = self.snapshot().schema.clone();
        let graphs = self.build_graphs(config, &entry, &schema, &ex.payloads, &mut record)?;
        entry.files.extend(graphs);
        self.log_phase(id, "graphs and codes written");
        entry.files.push(built::write(&self.dir, id, &record)?);
        let stores = self.build_token_stores(config, id, ex, sources)?;
        entry.files.extend(stores);
        let sparse = self.write_sparse_indexes(id, ex)?;
        entry.files.extend(sparse);
        field_index::persist::write_for_new_segment(&self.dir, &mut entry, &schema, &ex.payloads)?;
        self.log_phase(id, "written");
        Ok(entry)
    }

    /// Logs (at debug) the process's anonymous resident memory as a new segment's write passes
    /// `phase`: where a seal's or merge's peak goes.
    fn log_phase(&self, segment: u64, phase: &str) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(collection = %self.name, segment, phase, anon_kib = ?anon_kib(), "optimize phase");
        }
    }

    /// Seals (when asked, when the active segment is full, or when tombstones need persisting), then
    /// vacuums, then merges. Returns how many segments were vacuumed.
    pub(crate) fn optimize(&self, seal_now: bool) -> Result<usize> {
        let mut manifest = self.optimizer.lock();
        self.optimizing.store(true, Ordering::Release);
        let result = (|| {
            let set = self.snapshot();
            let full = self.seal_due(&set);
            if seal_now || full || !set.frozen.is_empty() || self.vacuum_wanted(&set) {
                let sealed = self.seal(&mut manifest);
                self.end_optimization(sealed.as_ref().err());
                // Writers held back by `prevent_unoptimized` look again.
                self.sealed_signal.1.notify_all();
                sealed?;
            }
            let vacuumed = self.vacuum_pass(&mut manifest);
            self.end_optimization(vacuumed.as_ref().err());
            let vacuumed = vacuumed?;
            let rebuilt = self.rebuild_pass(&mut manifest);
            self.end_optimization(rebuilt.as_ref().err());
            rebuilt?;
            // After the vacuum, so sizes are of live rows and a merge never copies rows a vacuum
            // would drop anyway.
            let merged = self.merge_pass(&mut manifest);
            self.end_optimization(merged.as_ref().err());
            merged?;
            Ok(vacuumed)
        })();
        self.optimizing.store(false, Ordering::Release);
        result
    }

    /// Freezes the active segment, writes it (and any segment frozen by a failed earlier attempt) as
    /// sealed segments with graphs, persists changed tombstones, commits the manifest, publishes the new
    /// set, then trims the WAL.
    fn seal(&self, current: &mut Manifest) -> Result<()> {
        // One config for the whole seal (a concurrent update applies from the next one).
        let config = self.config();
        // Freeze at one sequence number.
        let (frozen, sealed_snaps, wal_seq) = {
            let _w = self.writer.lock();
            let wal_seq = self.wal.last_seq();
            let mut guard = self.segments.write();
            let old = guard.clone();
            let mut frozen = old.frozen.clone();
            let active = if old.active.data.read().len() > 0 {
                frozen.push(old.active.clone());
                Arc::new(MemSegment::new(&config, &old.schema))
            } else {
                old.active.clone()
            };
            *guard = Arc::new(SegmentSet {
                sealed: old.sealed.clone(),
                frozen: frozen.clone(),
                active,
                schema: old.schema.clone(),
            });
            let frozen: Vec<(Arc<MemSegment>, Bitmap)> = frozen
                .into_iter()
                .map(|m| {
                    let d = m.deleted.read().clone();
                    (m, d)
                })
                .collect();
            let sealed: Vec<(Arc<Sealed>, Bitmap)> = old
                .sealed
                .iter()
                .map(|s| (s.clone(), s.deleted.read().clone()))
                .collect();
            (frozen, sealed, wal_seq)
        };
        if wal_seq <= current.wal_seq && frozen.is_empty() {
            return Ok(());
        }

        let mut next = current.clone();
        // Live points of each frozen segment, in id order.
        let lives: Vec<Vec<u32>> = frozen
            .iter()
            .map(|(m, snap)| match &View::mem(m) {
                View::Mem { data, .. } => data
                    .index
                    .values()
                    .copied()
                    .filter(|&o| !snap.get(o as usize))
                    .collect(),
                View::Sealed { .. } => unreachable!("a frozen segment is in memory"),
            })
            .collect();
        if !frozen.is_empty() {
            let inputs = lives
                .iter()
                .map(|live| SegmentRef {
                    id: None,
                    points: live.len(),
                })
                .collect();
            self.begin_optimization(OptimizationKind::Seal, next.next_segment_id, inputs);
            self.log_phase(next.next_segment_id, "frozen");
        }
        // New segments from frozen rows.
        let mut built: Vec<Built> = Vec::new();
        for ((m, _), live) in frozen.iter().zip(lives) {
            if live.is_empty() {
                built.push((m.clone(), None));
                continue;
            }
            // Writers can outpace seals, so a frozen segment may hold many times the configured size;
            // it is written as several segments of at most that size (id ranges, in order).
            let parts = seal_parts(&config, &m.data.read(), &live);
            for part in parts {
                let ex = {
                    let view = View::mem(m);
                    let picked: Vec<_> = part.iter().map(|&o| (0, &view, o)).collect();
                    Extracted::from_rows(&config, &picked)
                };
                let sources = [RowSource::Mem(m.data.read())];
                let entry = self.write_new_segment(&config, &mut next, &ex, &sources)?;
                next.segments.push(entry.clone());
                built.push((m.clone(), Some((entry, part.to_vec()))));
                self.advance_optimization(part.len());
            }
        }
        // New tombstone generations where deletes changed since the last manifest.
        let mut garbage = Vec::new();
        let mut persisted_updates = Vec::new();
        for (s, snap) in &sealed_snaps {
            if snap.count_ones() == s.persisted.lock().count_ones() {
                continue;
            }
            let Some(entry) = next.segments.iter_mut().find(|e| e.id == s.id) else {
                continue;
            };
            let old = entry
                .deleted_file()
                .cloned()
                .expect("opened segments have tombstones");
            let generation = match old.file {
                SegmentFile::Deleted { generation } => generation + 1,
                _ => 1,
            };
            let f = write_deleted_generation(&self.dir, s.id, generation, snap)?;
            entry.files.retain(|x| x != &old);
            entry.files.push(f);
            garbage.push(old.full_path(&self.dir));
            persisted_updates.push((s.clone(), snap.clone()));
        }
        next.wal_seq = next.wal_seq.max(wal_seq);
        next.generation += 1;
        // Open before committing, so a file that does not open never becomes part of the manifest.
        let mut opened = Vec::new();
        for (m, b) in &built {
            if let Some((entry, live)) = b {
                opened.push((
                    m.clone(),
                    Arc::new(open_sealed(&self.dir, entry, &config)?),
                    live.clone(),
                ));
            }
        }
        if let Some((_, sealed, _)) = opened.last() {
            self.log_phase(sealed.id, "opened");
        }
        next.store(&self.dir)?;
        *current = next;
        for (s, snap) in persisted_updates {
            *s.persisted.lock() = snap;
        }

        // Publish: carry tombstones set since the freeze over to the new segments.
        {
            let _w = self.writer.lock();
            let mut guard = self.segments.write();
            let cur = guard.clone();
            for (m, sealed, live) in &opened {
                let d = m.deleted.read();
                let mut nd = sealed.deleted.write();
                for (i, &o) in live.iter().enumerate() {
                    if d.get(o as usize) {
                        nd.set(i);
                    }
                }
            }
            let mut sealed = cur.sealed.clone();
            sealed.extend(opened.iter().map(|(_, s, _)| s.clone()));
            let frozen = cur
                .frozen
                .iter()
                .filter(|f| !built.iter().any(|(m, _)| Arc::ptr_eq(m, f)))
                .cloned()
                .collect();
            *guard = Arc::new(SegmentSet {
                sealed,
                frozen,
                active: cur.active.clone(),
                schema: cur.schema.clone(),
            });
        }
        self.wal.trim(wal_seq)?;
        for g in garbage {
            if let Err(e) = std::fs::remove_file(&g) {
                tracing::warn!(file = %g.display(), "removing an old tombstone file: {e}");
            }
        }
        tracing::debug!(collection = %self.name, wal_seq, "sealed");
        Ok(())
    }

    /// Adds or deletes vectors: `edit` changes a copy of the config (given the id the next sealed
    /// segment gets), which is validated and stored; the appendable segment, laid out for the old
    /// vectors, is frozen and sealed at once, and the sealed segments are reopened under the new
    /// config (a deleted vector's files stay until a rewrite, unopened). Holding the optimizer lock
    /// throughout, so no seal or vacuum runs between the change and the reopening.
    pub(crate) fn change_vectors(
        &self,
        edit: impl FnOnce(&mut CollectionConfig, u64) -> Result<()>,
    ) -> Result<()> {
        let mut manifest = self.optimizer.lock();
        self.optimizing.store(true, Ordering::Release);
        let result = (|| {
            {
                let _w = self.writer.lock();
                if self.closed.load(Ordering::Acquire) {
                    return Err(crate::Error::Cancelled);
                }
                let mut next = CollectionConfig::clone(&self.config());
                edit(&mut next, manifest.next_segment_id)?;
                next.validate()?;
                super::write_config(&self.dir, &next, &self.snapshot().schema)?;
                let mut guard = self.segments.write();
                let old = guard.clone();
                let mut frozen = old.frozen.clone();
                if old.active.data.read().len() > 0 {
                    frozen.push(old.active.clone());
                }
                *guard = Arc::new(SegmentSet {
                    sealed: old.sealed.clone(),
                    frozen,
                    active: Arc::new(MemSegment::new(&next, &old.schema)),
                    schema: old.schema.clone(),
                });
                *self.config.write() = Arc::new(next);
            }
            self.seal(&mut manifest)?;
            self.reopen_sealed(&manifest)
        })();
        self.optimizing.store(false, Ordering::Release);
        result
    }

    /// Reopens every sealed segment under the current config, keeping its tombstones.
    fn reopen_sealed(&self, manifest: &Manifest) -> Result<()> {
        let config = self.config();
        let current = self.snapshot().sealed.clone();
        let mut reopened = Vec::with_capacity(current.len());
        for s in &current {
            let entry = manifest
                .segments
                .iter()
                .find(|e| e.id == s.id)
                .expect("a published segment is in the manifest");
            reopened.push(open_sealed(&self.dir, entry, &config)?);
        }
        // Seals and vacuums wait for the optimizer lock the caller holds, so the sealed segments
        // are still those reopened; the writer lock keeps tombstones still while they are copied.
        let _w = self.writer.lock();
        let mut guard = self.segments.write();
        let cur = guard.clone();
        let sealed = reopened
            .into_iter()
            .zip(&cur.sealed)
            .map(|(new, old)| {
                debug_assert_eq!(new.id, old.id);
                *new.deleted.write() = old.deleted.read().clone();
                *new.persisted.lock() = old.persisted.lock().clone();
                Arc::new(new)
            })
            .collect();
        *guard = Arc::new(SegmentSet {
            sealed,
            frozen: cur.frozen.clone(),
            active: cur.active.clone(),
            schema: cur.schema.clone(),
        });
        Ok(())
    }

    /// Rewrites every sealed segment whose persisted tombstones pass the vacuum condition
    /// ([`crate::config::OptimizerConfig::vacuum_due`]).
    fn vacuum_pass(&self, current: &mut Manifest) -> Result<usize> {
        let config = self.config();
        self.rewrite_each(current, OptimizationKind::Vacuum, |s| {
            let dead = s.persisted.lock().count_ones();
            config.optimizer_config.vacuum_due(s.points.len(), dead)
        })
    }

    /// Rebuilds, one by one, every sealed segment built with settings the config no longer has
    /// (Qdrant's config-mismatch optimizer): after a PATCH of a vector's HNSW parameters,
    /// quantization or `on_disk`. Returns how many were rebuilt.
    fn rebuild_pass(&self, current: &mut Manifest) -> Result<usize> {
        let config = self.config();
        self.rewrite_each(current, OptimizationKind::ConfigMismatch, |s| {
            s.needs_rebuild(&config)
        })
    }

    /// Rewrites, one at a time, each sealed segment of the current set that `due` picks. Returns
    /// how many were rewritten.
    fn rewrite_each(
        &self,
        current: &mut Manifest,
        kind: OptimizationKind,
        due: impl Fn(&Sealed) -> bool,
    ) -> Result<usize> {
        let mut done = 0;
        let candidates: Vec<Arc<Sealed>> = self.snapshot().sealed.clone();
        for s in candidates {
            if !due(&s) {
                continue;
            }
            if self.stop.load(Ordering::Acquire) {
                return Err(crate::Error::Cancelled);
            }
            self.rewrite(current, vec![s], kind)?;
            self.end_optimization(None);
            done += 1;
        }
        Ok(done)
    }

    /// Merges the smallest sealed segments, batch by batch as [`plan_merges`] picks them, until the
    /// collection is down to its target number or no batch fits under the size limit. Returns how many
    /// merges ran.
    fn merge_pass(&self, current: &mut Manifest) -> Result<usize> {
        let mut done = 0;
        loop {
            let batches = self.merge_plan(&self.snapshot());
            if batches.is_empty() {
                return Ok(done);
            }
            for batch in batches {
                if self.stop.load(Ordering::Acquire) {
                    return Err(crate::Error::Cancelled);
                }
                self.rewrite(current, batch, OptimizationKind::Merge)?;
                self.end_optimization(None);
                done += 1;
            }
        }
    }

    /// The batches of sealed segments a merge pass would merge now.
    pub(crate) fn merge_plan(&self, set: &SegmentSet) -> Vec<Vec<Arc<Sealed>>> {
        let config = self.config();
        let sizes: Vec<u64> = set
            .sealed
            .iter()
            .map(|s| sealed_vector_bytes(&config, s))
            .collect();
        let max_bytes = (config.max_segment_size_kib() as u64).saturating_mul(1024);
        plan_merges(&sizes, config.target_segments(), max_bytes)
            .into_iter()
            .map(|batch| batch.into_iter().map(|i| set.sealed[i].clone()).collect())
            .collect()
    }

    /// Writes the rows live (as persisted) in `inputs` as one segment built for the current config
    /// and swaps it in for them, carrying deletes made meanwhile: a vacuum (one input), a rebuild
    /// (one input) or a merge (several) is this one step. The caller ends the optimization it
    /// begins.
    fn rewrite(
        &self,
        current: &mut Manifest,
        inputs: Vec<Arc<Sealed>>,
        kind: OptimizationKind,
    ) -> Result<()> {
        let config = self.config();
        let mut next = current.clone();
        // Every row live as persisted, in id order across the inputs (a segment file is sorted by id;
        // the manifest's state has each id live in at most one segment, so the ids stay distinct).
        let mut rows: Vec<(PointId, usize, u32)> = Vec::new();
        let mut refs = Vec::with_capacity(inputs.len());
        for (i, s) in inputs.iter().enumerate() {
            let persisted = s.persisted.lock().clone();
            let before = rows.len();
            rows.extend(
                (0..s.points.len() as u32)
                    .filter(|&o| !persisted.get(o as usize))
                    .map(|o| (s.points.id(o), i, o)),
            );
            refs.push(SegmentRef {
                id: Some(s.id),
                points: rows.len() - before,
            });
        }
        rows.sort_unstable_by_key(|r| r.0);
        debug_assert!(rows.windows(2).all(|w| w[0].0 != w[1].0));
        self.begin_optimization(kind, next.next_segment_id, refs);
        let merged = if rows.is_empty() {
            None
        } else {
            let ex = {
                let views: Vec<View<'_>> = inputs.iter().map(|s| View::sealed(s)).collect();
                let picked: Vec<(u32, &View<'_>, u32)> = rows
                    .iter()
                    .map(|&(_, i, o)| (i as u32, &views[i], o))
                    .collect();
                Extracted::from_rows(&config, &picked)
            };
            let sources: Vec<RowSource<'_>> = inputs.iter().map(|s| RowSource::Sealed(s)).collect();
            Some(self.write_new_segment(&config, &mut next, &ex, &sources)?)
        };
        // The new segment takes the place of the first input, so the manifest keeps its order.
        let first = next
            .segments
            .iter()
            .position(|e| inputs.iter().any(|s| s.id == e.id))
            .expect("published segments are in the manifest");
        let merged_id = merged.as_ref().map(|e| e.id);
        if let Some(entry) = &merged {
            next.segments.insert(first, entry.clone());
        }
        next.segments
            .retain(|e| !inputs.iter().any(|s| s.id == e.id));
        debug_assert!(merged_id.is_none_or(|id| next.segments.iter().any(|e| e.id == id)));
        next.generation += 1;
        let opened = match &merged {
            Some(entry) => Some(Arc::new(open_sealed(&self.dir, entry, &config)?)),
            None => None,
        };
        next.store(&self.dir)?;
        *current = next;
        {
            let _w = self.writer.lock();
            let mut guard = self.segments.write();
            let cur = guard.clone();
            // Deletes made since the rows were read: tombstone the copies.
            if let Some(new) = &opened {
                let deleted: Vec<_> = inputs.iter().map(|s| s.deleted.read()).collect();
                let mut nd = new.deleted.write();
                for (j, &(_, i, o)) in rows.iter().enumerate() {
                    if deleted[i].get(o as usize) {
                        nd.set(j);
                    }
                }
            }
            let is_input = |x: &Arc<Sealed>| inputs.iter().any(|s| Arc::ptr_eq(s, x));
            let at = cur.sealed.iter().position(is_input);
            let mut sealed: Vec<Arc<Sealed>> = Vec::with_capacity(cur.sealed.len());
            for (k, x) in cur.sealed.iter().enumerate() {
                if Some(k) == at {
                    sealed.extend(opened.clone());
                }
                if !is_input(x) {
                    sealed.push(x.clone());
                }
            }
            *guard = Arc::new(SegmentSet {
                sealed,
                frozen: cur.frozen.clone(),
                active: cur.active.clone(),
                schema: cur.schema.clone(),
            });
        }
        // Readers still holding the old set keep the files mapped; the directories go with them.
        for s in &inputs {
            s.remove_on_drop.store(true, Ordering::Release);
        }
        self.advance_optimization(rows.len());
        tracing::debug!(
            collection = %self.name,
            segments = ?inputs.iter().map(|s| s.id).collect::<Vec<_>>(),
            into = ?merged_id,
            points = rows.len(),
            kind = ?kind,
            "rewrote"
        );
        Ok(())
    }
}

/// `RssAnon` of `/proc/self/status` in KiB (Linux only): memory the process allocated and has not
/// given back, including what the allocator holds free.
fn anon_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("RssAnon:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Bytes of vectors a sealed segment stores, counted as [`CollectionConfig::seal_due`] counts them
/// (4 per component of every dense row and token row), tombstoned rows included: the measure
/// `max_segment_size` bounds.
fn sealed_vector_bytes(config: &CollectionConfig, s: &Sealed) -> u64 {
    let floats: usize = s
        .vectors
        .iter()
        .map(|(name, v)| match v {
            SealedVector::Dense(d) => d.rows.rows().len(),
            SealedVector::Multi(m) => {
                let tokens = match (&m.rows, &m.tokens) {
                    (Some(rows), _) => rows.total_rows(),
                    (None, Some(t)) => t.num_tokens(),
                    (None, None) => 0,
                };
                tokens * config.vectors.get(name).map_or(0, |p| p.size)
            }
            SealedVector::Sparse(_) => 0,
        })
        .sum();
    (floats as u64).saturating_mul(std::mem::size_of::<f32>() as u64)
}

/// Qdrant's merge planning over segments of these sizes: the smallest first, each batch the longest
/// run whose summed size stays under `max_bytes`, of at least two segments. The first batch takes at
/// most as many as bring the count down to `target`; each later batch one more than the one before
/// it left to do, since a short batch (cut by size) leaves the rest to the next. Qdrant counts its
/// appendable segment and wants three per batch, because its merge may leave a copy-on-write segment
/// behind; here the active segment is not counted and a merge of `k` segments removes `k - 1`.
fn plan_merges(sizes: &[u64], target: usize, max_bytes: u64) -> Vec<Vec<usize>> {
    let n = sizes.len();
    if n <= target.max(1) {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    // Ties by position, so the oldest go first and a plan is the same on every run.
    order.sort_by_key(|&i| (sizes[i], i));
    let mut batches = Vec::new();
    let mut taken = 0;
    let mut last = n + 1 - target.max(1);
    while taken < last.min(n) {
        let mut sum = 0u64;
        let batch: Vec<usize> = order[taken..last.min(n)]
            .iter()
            .copied()
            .take_while(|&i| {
                sum = sum.saturating_add(sizes[i]);
                sum < max_bytes
            })
            .collect();
        if batch.len() < 2 {
            break;
        }
        taken += batch.len();
        last += 1;
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::{largest_vector_bytes, plan_merges, sealed_vector_residency};
    use crate::config::{CollectionConfig, Distance, Residency};
    use quiver_storage::{FileEntry, SegmentEntry, SegmentFile};

    fn file(file: SegmentFile, size: u64) -> FileEntry {
        FileEntry {
            file,
            path: String::new(),
            size,
            crc32: 0,
        }
    }

    #[test]
    fn memmap_threshold_maps_segments_whose_largest_vector_passes_it() {
        let entry = SegmentEntry {
            id: 1,
            num_points: 10,
            files: vec![
                file(SegmentFile::Points, 1 << 30),
                file(SegmentFile::Dense { vector: "a".into() }, 3 * 1024),
                file(SegmentFile::Multi { vector: "b".into() }, 5 * 1024),
            ],
        };
        // The points file is not a vector's.
        assert_eq!(largest_vector_bytes(&entry), 5 * 1024);
        let mut c = CollectionConfig::single(4, Distance::Dot);
        let residency = |c: &CollectionConfig| {
            let mapped = c.optimizer_config.memmap_due(largest_vector_bytes(&entry));
            sealed_vector_residency(c, mapped, "")
        };
        assert_eq!(residency(&c), Residency::InMemory);
        c.optimizer_config.memmap_threshold = Some(5);
        assert_eq!(residency(&c), Residency::Mapped);
        c.optimizer_config.memmap_threshold = Some(6);
        assert_eq!(residency(&c), Residency::InMemory);
        // 0 turns it off.
        c.optimizer_config.memmap_threshold = Some(0);
        assert_eq!(residency(&c), Residency::InMemory);
        // `on_disk` maps whatever the threshold.
        c.vectors.get_mut("").unwrap().on_disk = Some(true);
        assert_eq!(residency(&c), Residency::Mapped);
    }

    fn plan(sizes: &[u64], target: usize, max: u64) -> Vec<Vec<u64>> {
        plan_merges(sizes, target, max)
            .into_iter()
            .map(|b| b.into_iter().map(|i| sizes[i]).collect())
            .collect()
    }

    #[test]
    fn merges_the_smallest_down_to_the_target() {
        let sizes = [50, 10, 40, 20, 30];
        // Five down to three: merging the three smallest into one removes two.
        assert_eq!(plan(&sizes, 3, 1000), [vec![10, 20, 30]]);
        assert_eq!(plan(&sizes, 4, 1000), [vec![10, 20]]);
        assert_eq!(plan(&sizes, 1, 1000), [vec![10, 20, 30, 40, 50]]);
        assert!(plan(&sizes, 5, 1000).is_empty());
        assert!(plan(&sizes, 9, 1000).is_empty());
        // Zero means the default elsewhere; here it is treated as one.
        assert_eq!(plan(&sizes, 0, 1000), [vec![10, 20, 30, 40, 50]]);
    }

    #[test]
    fn size_limit_splits_batches_and_stops_them() {
        let sizes = [10, 11, 12, 13, 14, 15, 16];
        // 10+11+12 = 33 < 40, +13 passes: then 13+14 = 27, +15 passes; then 15+16 = 31.
        assert_eq!(
            plan(&sizes, 1, 40),
            [vec![10, 11, 12], vec![13, 14], vec![15, 16]]
        );
        // Nothing pairs under 21.
        assert!(plan(&sizes, 1, 21).is_empty());
        // The window grows by one per batch: target 5 allows 7 + 1 - 5 = 3 at first.
        assert_eq!(plan(&sizes, 5, 22), [vec![10, 11]]);
        // Short batches still reach the target: seven down to four in three merges of two.
        assert_eq!(
            plan(&sizes, 4, 30),
            [vec![10, 11], vec![12, 13], vec![14, 15]]
        );
    }
}
