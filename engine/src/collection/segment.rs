//! The two kinds of segment a collection holds, and one read view over both.
//!
//! - [`MemSegment`]: rows in memory, append-only. The collection has one *active* one taking writes;
//!   when it is frozen for sealing it stops receiving rows (only tombstones), so offsets into it stay
//!   valid for as long as anyone holds it.
//! - [`Sealed`]: immutable mapped files plus an in-memory tombstone bitmap (persisted as a new file
//!   generation on the next seal).
//!
//! Locks: `data` before `deleted`, never the other way round.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};
use quiver_storage::segment::{DenseFile, MultiFile, PointsFile};
use quiver_storage::{Bitmap, PointId};

use super::anon_rows::AnonRows;
use super::field_index::mem::{MemIndex, MemIndexes};
use super::payload;
use super::value_graphs::ValueGraph;
use crate::config::CollectionConfig;
use crate::index::hnsw::GraphView;
use crate::index::prefix::PrefixFile;
use crate::index::VectorSlab;
use crate::payload_schema::{PayloadSchema, PayloadSchemaType};
use crate::plaid::PlaidIndex;
use crate::point::{NamedVectors, Payload, PointInsert, Vector, WithVectors};
use crate::quantization::CodesFile;
use crate::sparse::index::SparseIndexFile;
use crate::sparse::rows::SparseRows;
use crate::sparse::SparseRef;
use crate::{Error, Result};

/// One dense vector name in memory: a row for every offset (zeros where the point lacks it).
pub(crate) struct MemDense {
    pub dim: usize,
    pub data: AnonRows<f32>,
    pub present: Bitmap,
}

/// One multi-vector name in memory.
pub(crate) struct MemMulti {
    pub dim: usize,
    /// `len + 1` row offsets.
    pub offsets: Vec<u64>,
    pub data: MultiRows,
}

impl MemMulti {
    /// Where point `off`'s rows lie in `data` (in components), if it has any.
    fn span(&self, off: u32) -> Option<(usize, usize)> {
        let (a, b) = (
            self.offsets[off as usize] as usize,
            self.offsets[off as usize + 1] as usize,
        );
        (b > a).then_some((a * self.dim, b * self.dim))
    }
}

/// Token rows of the appendable segment. A name whose sealed segments keep only compressed tokens
/// holds them as f16: precision beyond that is dropped at the seal anyway, and the tokens are the bulk
/// of such a collection's memory.
pub(crate) enum MultiRows {
    F32(AnonRows<f32>),
    F16(AnonRows<half::f16>),
}

impl MultiRows {
    fn len(&self) -> usize {
        match self {
            MultiRows::F32(v) => v.len(),
            MultiRows::F16(v) => v.len(),
        }
    }

    fn extend(&mut self, row: &[f32]) {
        match self {
            MultiRows::F32(v) => v.extend_from_slice(row),
            MultiRows::F16(v) => v.append_with(row.len(), |tail| {
                for (t, &x) in tail.iter_mut().zip(row) {
                    *t = half::f16::from_f32(x);
                }
            }),
        }
    }

    /// Rows `from..to`, f16 ones widened into `buf` (reused across the calls of a scan).
    fn rows_into<'s>(&'s self, from: usize, to: usize, buf: &'s mut Vec<f32>) -> &'s [f32] {
        match self {
            MultiRows::F32(v) => &v[from..to],
            MultiRows::F16(v) => {
                crate::kernels::widen_f16(&v[from..to], buf);
                buf
            }
        }
    }
}

/// Rows of an in-memory segment.
pub(crate) struct MemData {
    pub ids: Vec<PointId>,
    pub payloads: Vec<Payload>,
    pub dense: BTreeMap<String, MemDense>,
    pub multi: BTreeMap<String, MemMulti>,
    pub sparse: BTreeMap<String, SparseRows>,
    /// Latest offset of each id (check the tombstones for liveness).
    pub index: BTreeMap<PointId, u32>,
    /// Payload field indexes, kept with the payloads they index (see [`super::field_index::mem`]).
    pub field_indexes: MemIndexes,
    /// Tests: how many payloads a [`View`] of it has read for a filter or a record.
    #[cfg(test)]
    pub payload_reads: std::sync::atomic::AtomicUsize,
}

impl MemData {
    /// Point `off`'s rows of multi-vector `name` (`dim`-strided), if it has any; f16 ones widened into
    /// `buf`.
    pub fn multi_rows_into<'s>(
        &'s self,
        name: &str,
        off: u32,
        buf: &'s mut Vec<f32>,
    ) -> Option<&'s [f32]> {
        let col = self.multi.get(name)?;
        let (from, to) = col.span(off)?;
        Some(col.data.rows_into(from, to, buf))
    }

    /// How many token rows point `off` has of multi-vector `name` with `dim` floats a row, read from the
    /// offsets alone.
    pub fn multi_len(&self, name: &str, dim: usize, off: u32) -> usize {
        self.multi
            .get(name)
            .filter(|col| col.dim == dim)
            .map_or(0, |col| {
                (col.offsets[off as usize + 1] - col.offsets[off as usize]) as usize
            })
    }

    pub fn new(config: &CollectionConfig) -> Self {
        let mut dense = BTreeMap::new();
        let mut multi = BTreeMap::new();
        for (name, p) in &config.vectors {
            if p.multivector_config.is_some() {
                let compressed_only = config.token_store(name).is_some_and(|t| !t.keep_originals);
                multi.insert(
                    name.clone(),
                    MemMulti {
                        dim: p.size,
                        offsets: vec![0],
                        data: if compressed_only {
                            MultiRows::F16(AnonRows::default())
                        } else {
                            MultiRows::F32(AnonRows::default())
                        },
                    },
                );
            } else {
                dense.insert(
                    name.clone(),
                    MemDense {
                        dim: p.size,
                        data: AnonRows::default(),
                        present: Bitmap::default(),
                    },
                );
            }
        }
        let sparse = config
            .sparse_vectors
            .keys()
            .map(|name| (name.clone(), SparseRows::default()))
            .collect();
        MemData {
            ids: Vec::new(),
            payloads: Vec::new(),
            dense,
            multi,
            sparse,
            index: BTreeMap::new(),
            field_indexes: MemIndexes::default(),
            #[cfg(test)]
            payload_reads: Default::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Bytes of vectors held, counted as [`CollectionConfig::seal_due`] counts them: 4 per component
    /// of every dense row and of every token row of a multi-vector, whatever the rows are stored as.
    pub fn vector_bytes(&self) -> usize {
        let dense: usize = self.dense.values().map(|d| d.data.len()).sum();
        let tokens: usize = self
            .multi
            .values()
            .map(|m| *m.offsets.last().unwrap_or(&0) as usize * m.dim)
            .sum();
        (dense + tokens).saturating_mul(std::mem::size_of::<f32>())
    }

    /// [`MemData::vector_bytes`] of point `off` alone.
    pub fn point_vector_bytes(&self, off: u32) -> usize {
        let dense: usize = self.dense.values().map(|d| d.dim).sum();
        let tokens: usize = self
            .multi
            .values()
            .map(|m| (m.offsets[off as usize + 1] - m.offsets[off as usize]) as usize * m.dim)
            .sum();
        (dense + tokens).saturating_mul(std::mem::size_of::<f32>())
    }

    /// Appends a validated point; returns its offset.
    pub fn push(&mut self, point: PointInsert) -> u32 {
        let off = self.ids.len() as u32;
        self.ids.push(point.id);
        self.payloads.push(point.payload.unwrap_or_default());
        self.field_indexes.add(off, &self.payloads[off as usize]);
        let mut vectors = point.vectors;
        for (name, col) in self.dense.iter_mut() {
            match vectors.remove(name) {
                Some(Vector::Dense(v)) => {
                    col.data.extend_from_slice(&v);
                    col.present.push(true);
                }
                _ => {
                    col.data.extend_zeros(col.dim);
                    col.present.push(false);
                }
            }
        }
        for (name, col) in self.multi.iter_mut() {
            if let Some(Vector::Multi(rows)) = vectors.remove(name) {
                for r in &rows {
                    col.data.extend(r);
                }
            }
            col.offsets.push((col.data.len() / col.dim) as u64);
        }
        for (name, rows) in self.sparse.iter_mut() {
            match vectors.remove(name) {
                Some(Vector::Sparse(v)) => rows.push_vector(Some(&v)),
                _ => rows.push_vector(None),
            }
        }
        self.index.insert(point.id, off);
        off
    }

    /// Changes the payload at `off` in place, and its values in the field indexes with it.
    pub fn edit_payload(&mut self, off: u32, edit: impl FnOnce(&mut Payload)) {
        let payload = &mut self.payloads[off as usize];
        self.field_indexes.remove(off, payload);
        edit(payload);
        self.field_indexes.add(off, payload);
    }
}

/// An in-memory segment: the active one, or a frozen one being sealed.
pub(crate) struct MemSegment {
    pub data: RwLock<MemData>,
    pub deleted: RwLock<Bitmap>,
}

impl MemSegment {
    /// An empty segment with a payload index for every field of `schema`.
    pub fn new(config: &CollectionConfig, schema: &PayloadSchema) -> Self {
        let seg = MemSegment {
            data: RwLock::new(MemData::new(config)),
            deleted: RwLock::new(Bitmap::default()),
        };
        seg.sync_field_indexes(schema);
        seg
    }

    /// Gives the segment a payload index for every field of `schema`, as `schema` has it, and drops
    /// the others. The caller holds the collection's writer lock, so the payloads do not change
    /// between the build (under the read lock, so readers go on) and the swap.
    pub fn sync_field_indexes(&self, schema: &PayloadSchema) {
        let built: Vec<MemIndex> = {
            let data = self.data.read();
            data.field_indexes
                .missing(schema)
                .into_iter()
                .map(|field| MemIndex::build(field, schema, &data.payloads))
                .collect()
        };
        self.data.write().field_indexes.replace(schema, built);
    }

    /// Appends a point (active segment only).
    pub fn push(&self, point: PointInsert) {
        let mut data = self.data.write();
        data.push(point);
        self.deleted.write().push(false);
    }
}

/// A sealed segment: its points, each named vector with the indexes over it, and tombstones in
/// memory.
pub(crate) struct Sealed {
    pub id: u64,
    /// Ids and payloads.
    pub points: PointsFile,
    /// Every named vector the segment stores, by name.
    pub vectors: BTreeMap<String, SealedVector>,
    pub deleted: RwLock<Bitmap>,
    /// Tombstones as of the stored manifest (only the optimizer reads or changes it).
    pub persisted: parking_lot::Mutex<Bitmap>,
    /// Set when a vacuum replaced this segment: its directory goes when the last reader lets go.
    pub remove_on_drop: AtomicBool,
    pub dir: PathBuf,
    /// Payload field indexes built so far, by field and type (see [`super::field_index`]).
    pub field_indexes: parking_lot::Mutex<FieldIndexes>,
    /// The settings its dense vectors were built with (see [`super::built`]).
    pub built: super::built::BuiltWith,
    /// Tests: how many payloads a [`View`] of it has parsed.
    #[cfg(test)]
    pub payload_reads: std::sync::atomic::AtomicUsize,
}

/// The payload field indexes of a sealed segment.
pub(crate) type FieldIndexes =
    std::collections::HashMap<(String, PayloadSchemaType), Arc<super::field_index::FieldIndex>>;

/// One named vector of a sealed segment: its rows and whatever indexes them.
pub(crate) enum SealedVector {
    Dense(SealedDense),
    Multi(SealedMulti),
    /// A sparse vector: its inverted index with the forward rows.
    Sparse(SparseIndexFile),
}

/// A dense vector of a sealed segment.
pub(crate) struct SealedDense {
    /// The rows of the points that have the vector.
    pub rows: DenseFile,
    /// Its HNSW graph, when the segment was large enough for one.
    pub graph: Option<GraphView>,
    /// The Matryoshka prefix rows the graph indexes, for a vector bound with `dims`.
    pub prefix: Option<PrefixFile>,
    /// The rows' quantized codes, which the graph walk scores with, for a quantized vector.
    pub codes: Option<CodesFile>,
    /// One graph per value of an indexed field that enough of the segment's points hold.
    pub value_graphs: Vec<ValueGraph>,
}

/// A multivector of a sealed segment.
pub(crate) struct SealedMulti {
    /// The token rows as inserted; `None` when the token store is the only copy.
    pub rows: Option<MultiFile>,
    /// Its token store (PLAID).
    pub tokens: Option<PlaidIndex>,
}

impl Sealed {
    pub(crate) fn dense(&self, name: &str) -> Option<&SealedDense> {
        match self.vectors.get(name)? {
            SealedVector::Dense(d) => Some(d),
            SealedVector::Multi(_) | SealedVector::Sparse(_) => None,
        }
    }

    fn multi(&self, name: &str) -> Option<&SealedMulti> {
        match self.vectors.get(name)? {
            SealedVector::Multi(m) => Some(m),
            SealedVector::Dense(_) | SealedVector::Sparse(_) => None,
        }
    }

    /// Point `off`'s rows of multi-vector `name`, if it has any: as inserted, or where the token store
    /// is the only copy, its originals or its decompressed tokens, written into `buf`.
    pub fn multi_rows_into<'s>(
        &'s self,
        name: &str,
        off: u32,
        buf: &'s mut Vec<f32>,
    ) -> Option<&'s [f32]> {
        let multi = self.multi(name)?;
        if let Some(file) = &multi.rows {
            return file.rows(off);
        }
        let store = multi.tokens.as_ref()?;
        if store.point_len(off)? == 0 {
            return None;
        }
        store.tokens_into(off, buf).ok()?;
        Some(buf)
    }

    /// How many token rows point `off` has of multi-vector `name` with `dim` floats a row, read without
    /// touching the rows.
    pub fn multi_len(&self, name: &str, dim: usize, off: u32) -> usize {
        let Some(multi) = self.multi(name) else {
            return 0;
        };
        match (&multi.rows, &multi.tokens) {
            (Some(file), _) if file.dim() == dim => file.rows(off).map_or(0, |r| r.len() / dim),
            (None, Some(store)) if store.dim() == dim => store.point_len(off).unwrap_or(0),
            _ => 0,
        }
    }

    fn sparse(&self, name: &str) -> Option<&SparseIndexFile> {
        match self.vectors.get(name)? {
            SealedVector::Sparse(s) => Some(s),
            SealedVector::Dense(_) | SealedVector::Multi(_) => None,
        }
    }

    /// Whether the config has moved away from what the segment's dense vectors were built with.
    pub fn needs_rebuild(&self, config: &crate::config::CollectionConfig) -> bool {
        let rows = self.vectors.iter().filter_map(|(name, v)| match v {
            SealedVector::Dense(d) => Some((name.as_str(), d.rows.num_rows())),
            SealedVector::Multi(_) | SealedVector::Sparse(_) => None,
        });
        super::built::mismatch(config, &self.built, rows)
    }

    /// Whether any vector of the segment has a graph.
    pub fn has_graph(&self) -> bool {
        self.vectors
            .values()
            .any(|v| matches!(v, SealedVector::Dense(d) if d.graph.is_some()))
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if self.remove_on_drop.load(Ordering::Acquire) {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %self.dir.display(), "removing a vacuumed segment: {e}");
                }
            }
        }
    }
}

/// How rows of a dense slab map to point offsets.
#[derive(Clone, Copy)]
pub(crate) enum RowMap<'a> {
    /// Row `i` is point `i`; `present` says which points have the vector.
    Mem(&'a Bitmap),
    /// The file's row table.
    File(&'a DenseFile),
}

/// A dense vector name of one segment, ready to search.
#[derive(Clone, Copy)]
pub(crate) struct DenseView<'a> {
    pub slab: VectorSlab<'a>,
    pub rows: RowMap<'a>,
}

impl DenseView<'_> {
    /// The point of a row, if that row holds a real vector.
    #[inline]
    pub fn row_to_point(&self, row: u32) -> Option<u32> {
        match self.rows {
            RowMap::Mem(present) => present.get(row as usize).then_some(row),
            RowMap::File(f) => Some(f.row_to_point(row)),
        }
    }

    /// The row of a point, if it has the vector.
    #[inline]
    pub fn point_to_row(&self, point: u32) -> Option<u32> {
        match self.rows {
            RowMap::Mem(present) => present.get(point as usize).then_some(point),
            RowMap::File(f) => f.point_to_row(point),
        }
    }
}

/// A read view of one segment, holding its locks for as long as it lives.
pub(crate) enum View<'a> {
    Mem {
        data: RwLockReadGuard<'a, MemData>,
        deleted: RwLockReadGuard<'a, Bitmap>,
    },
    Sealed {
        seg: &'a Sealed,
        deleted: RwLockReadGuard<'a, Bitmap>,
    },
}

impl<'a> View<'a> {
    pub fn mem(seg: &'a MemSegment) -> Self {
        let data = seg.data.read();
        let deleted = seg.deleted.read();
        View::Mem { data, deleted }
    }

    pub fn sealed(seg: &'a Sealed) -> Self {
        View::Sealed {
            seg,
            deleted: seg.deleted.read(),
        }
    }

    /// Offsets in the segment (live and tombstoned).
    pub fn len(&self) -> usize {
        match self {
            View::Mem { data, .. } => data.len(),
            View::Sealed { seg, .. } => seg.points.len(),
        }
    }

    pub fn deleted(&self) -> &Bitmap {
        match self {
            View::Mem { deleted, .. } | View::Sealed { deleted, .. } => deleted,
        }
    }

    #[inline]
    pub fn is_live(&self, off: u32) -> bool {
        !self.deleted().get(off as usize)
    }

    pub fn live_count(&self) -> usize {
        self.len() - self.deleted().count_ones()
    }

    pub fn id(&self, off: u32) -> PointId {
        match self {
            View::Mem { data, .. } => data.ids[off as usize],
            View::Sealed { seg, .. } => seg.points.id(off),
        }
    }

    pub fn payload(&self, off: u32) -> Cow<'_, Payload> {
        match self {
            View::Mem { data, .. } => {
                #[cfg(test)]
                data.payload_reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Cow::Borrowed(&data.payloads[off as usize])
            }
            View::Sealed { seg, .. } => {
                #[cfg(test)]
                seg.payload_reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Cow::Owned(payload::parse(seg.points.payload(off)))
            }
        }
    }

    /// The live offset of `id`.
    pub fn find(&self, id: &PointId) -> Option<u32> {
        let off = self.find_any(id)?;
        self.is_live(off).then_some(off)
    }

    /// The offset of `id`, live or tombstoned.
    pub fn find_any(&self, id: &PointId) -> Option<u32> {
        match self {
            View::Mem { data, .. } => data.index.get(id).copied(),
            View::Sealed { seg, .. } => seg.points.find(id),
        }
    }

    /// Live offsets with id `>= start`, in id order, at most `limit` of them that pass `keep`.
    pub fn live_sorted_from(
        &self,
        start: Option<&PointId>,
        limit: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<u32> {
        let live = |o: &u32| self.is_live(*o) && keep(*o);
        match self {
            View::Mem { data, .. } => {
                let iter: Box<dyn Iterator<Item = u32>> = match start {
                    Some(s) => Box::new(data.index.range(*s..).map(|(_, o)| *o)),
                    None => Box::new(data.index.values().copied()),
                };
                iter.filter(live).take(limit).collect()
            }
            View::Sealed { seg, .. } => {
                let from = start.map_or(0, |s| seg.points.lower_bound(s));
                (from..seg.points.len() as u32)
                    .filter(live)
                    .take(limit)
                    .collect()
            }
        }
    }

    pub fn dense(&self, name: &str) -> Option<DenseView<'_>> {
        match self {
            View::Mem { data, .. } => {
                let col = data.dense.get(name)?;
                Some(DenseView {
                    slab: VectorSlab {
                        data: &col.data,
                        dim: col.dim,
                    },
                    rows: RowMap::Mem(&col.present),
                })
            }
            View::Sealed { seg, .. } => {
                let f = &seg.dense(name)?.rows;
                Some(DenseView {
                    slab: VectorSlab {
                        data: f.rows(),
                        dim: f.dim(),
                    },
                    rows: RowMap::File(f),
                })
            }
        }
    }

    /// How many token rows the point has of multi-vector `name` with `dim` floats a row, read without
    /// touching the rows (0 where the segment holds the name at another dimension).
    pub fn multi_len(&self, name: &str, dim: usize, off: u32) -> usize {
        match self {
            View::Mem { data, .. } => data.multi_len(name, dim, off),
            View::Sealed { seg, .. } => seg.multi_len(name, dim, off),
        }
    }

    /// `f` of the point's rows of a multi-vector (`dim`-strided), if it has them: as inserted, or
    /// decompressed into `buf` where only a token store holds them (its originals where it keeps
    /// them), widened into it where the appendable segment keeps f16. Scoring many points reuses one
    /// buffer instead of allocating one each.
    pub fn with_multi_rows<R>(
        &self,
        name: &str,
        off: u32,
        buf: &mut Vec<f32>,
        f: impl FnOnce(&[f32]) -> R,
    ) -> Option<R> {
        match self {
            View::Mem { data, .. } => data.multi_rows_into(name, off, buf).map(f),
            View::Sealed { seg, .. } => seg.multi_rows_into(name, off, buf).map(f),
        }
    }

    /// Whether the point has a vector of this name (any kind), read from the row tables without
    /// touching the vector's data.
    pub fn has_vector(&self, name: &str, off: u32) -> bool {
        if let Some(d) = self.dense(name) {
            return d.point_to_row(off).is_some();
        }
        if self.sparse_row(name, off).is_some() {
            return true;
        }
        match self {
            View::Mem { data, .. } => data
                .multi
                .get(name)
                .is_some_and(|col| col.span(off).is_some()),
            View::Sealed { seg, .. } => seg.multi(name).is_some_and(|m| match &m.rows {
                Some(file) => file.rows(off).is_some(),
                None => m
                    .tokens
                    .as_ref()
                    .and_then(|t| t.point_len(off))
                    .is_some_and(|n| n > 0),
            }),
        }
    }

    /// A point's sparse vector, if it has one.
    pub fn sparse_row(&self, name: &str, off: u32) -> Option<SparseRef<'_>> {
        match self {
            View::Mem { data, .. } => data.sparse.get(name)?.row(off),
            View::Sealed { seg, .. } => seg.sparse(name)?.row(off),
        }
    }

    /// The inverted index of a sparse vector name (sealed segments only).
    pub fn sparse_index(&self, name: &str) -> Option<&SparseIndexFile> {
        match self {
            View::Mem { .. } => None,
            View::Sealed { seg, .. } => seg.sparse(name),
        }
    }

    /// The token store of a multi-vector name (sealed segments only).
    pub fn plaid(&self, name: &str) -> Option<&PlaidIndex> {
        match self {
            View::Mem { .. } => None,
            View::Sealed { seg, .. } => seg.multi(name)?.tokens.as_ref(),
        }
    }

    pub fn graph(&self, name: &str) -> Option<&GraphView> {
        match self {
            View::Mem { .. } => None,
            View::Sealed { seg, .. } => seg.dense(name)?.graph.as_ref(),
        }
    }

    /// The value graph of a dense vector that `filter` pins (sealed segments only; see
    /// [`super::value_graphs::pinned`]).
    pub fn value_graph(&self, name: &str, filter: &crate::filter::Filter) -> Option<&ValueGraph> {
        match self {
            View::Mem { .. } => None,
            View::Sealed { seg, .. } => {
                super::value_graphs::pinned(&seg.dense(name)?.value_graphs, filter)
            }
        }
    }

    /// The quantized codes of a dense vector's rows (sealed segments of a quantized vector only).
    pub fn codes(&self, name: &str) -> Option<&CodesFile> {
        match self {
            View::Mem { .. } => None,
            View::Sealed { seg, .. } => seg.dense(name)?.codes.as_ref(),
        }
    }

    /// The prefix rows a Matryoshka-bound vector's graph indexes (sealed segments with a graph only).
    pub fn prefix_slab(&self, name: &str) -> Option<VectorSlab<'_>> {
        match self {
            View::Mem { .. } => None,
            View::Sealed { seg, .. } => seg.dense(name)?.prefix.as_ref().map(PrefixFile::slab),
        }
    }

    /// The point's vectors as stored.
    pub fn all_vectors(&self, config: &CollectionConfig, off: u32) -> NamedVectors {
        let mut out = NamedVectors::new();
        for (name, params) in &config.vectors {
            if let Some(v) = self.vector(name, params.size, off) {
                out.insert(name.clone(), v);
            }
        }
        for name in config.sparse_vectors.keys() {
            if let Some(v) = self.sparse_row(name, off) {
                out.insert(name.clone(), Vector::Sparse(v.to_vector()));
            }
        }
        out
    }

    fn vector(&self, name: &str, dim: usize, off: u32) -> Option<Vector> {
        if let Some(d) = self.dense(name) {
            let row = d.point_to_row(off)?;
            return Some(Vector::Dense(d.slab.row(row).to_vec()));
        }
        self.with_multi_rows(name, off, &mut Vec::new(), |rows| {
            Vector::Multi(rows.chunks_exact(dim).map(|r| r.to_vec()).collect())
        })
    }

    /// The vectors a read asked for.
    pub fn vectors(
        &self,
        config: &CollectionConfig,
        off: u32,
        with: &WithVectors,
    ) -> Option<NamedVectors> {
        match with {
            WithVectors::None => None,
            WithVectors::All => Some(self.all_vectors(config, off)),
            WithVectors::Names(names) => {
                let mut out = NamedVectors::new();
                for name in names {
                    if let Some(p) = config.vectors.get(name) {
                        if let Some(v) = self.vector(name, p.size, off) {
                            out.insert(name.clone(), v);
                        }
                    } else if let Some(v) = self.sparse_row(name, off) {
                        out.insert(name.clone(), Vector::Sparse(v.to_vector()));
                    }
                }
                Some(out)
            }
        }
    }
}

/// Rejects `with_vectors` names the collection does not have.
pub(crate) fn check_with_vectors(config: &CollectionConfig, with: &WithVectors) -> Result<()> {
    if let WithVectors::Names(names) = with {
        for n in names {
            if !config.has_vector(n) {
                return Err(Error::VectorNameNotFound(n.clone()));
            }
        }
    }
    Ok(())
}
