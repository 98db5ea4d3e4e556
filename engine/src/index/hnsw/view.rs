//! A graph file, memory-mapped, and the search that walks it in place.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::path::Path;

use quiver_storage::segment::{cast, Mapped, Residency};

use super::format::{Header, Layout, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_LEVEL};
use super::NO_NODE;
use crate::config::Distance;
use crate::distance::{key_to_score, order_key};
use crate::index::topk::Scored;
use crate::index::visited::with_visited;
use crate::index::{Candidate, RowScorer, VectorSlab};
use crate::{Error, Result};

/// A graph file, memory-mapped.
pub struct GraphView {
    map: Mapped,
    header: Header,
    layout: Layout,
}

impl fmt::Debug for GraphView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphView")
            .field("path", &self.map.path())
            .field("nodes", &self.header.node_count)
            .field("max_level", &self.header.max_level)
            .field("m", &self.header.m)
            .finish()
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Storage(quiver_storage::Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    })
}

impl GraphView {
    /// Maps and validates the header of a graph file. Never rebuilds or parses the whole graph: it reads
    /// the header and the per-layer counts and checks that the file has exactly the size they imply.
    /// Neighbour ids are bounds-checked while searching, so a damaged body cannot make a search panic.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_as(path, Residency::Mapped)
    }

    /// [`GraphView::open`], with the file served as `residency` says.
    pub fn open_as(path: &Path, residency: Residency) -> Result<Self> {
        // Graph files are written once through `atomic_write_with` (temp file, rename) and never
        // modified, truncated or rewritten in place afterwards (`map_file`'s contract).
        let map = Mapped::open_as(path, residency)?;
        let raw: [u8; HEADER_LEN] = *map.header::<HEADER_LEN>().map_err(|_| {
            corrupt(
                path,
                format!("graph file is {} bytes, shorter than its header", map.len()),
            )
        })?;
        // Searches jump around the file.
        map.advise_random();
        let header = Header::from_bytes(&raw);
        let layout =
            validate(map.bytes(), &raw, &header).map_err(|reason| corrupt(path, reason))?;
        Ok(GraphView {
            map,
            header,
            layout,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.header.node_count as usize
    }

    /// True for a graph without nodes.
    pub fn is_empty(&self) -> bool {
        self.header.node_count == 0
    }

    /// Highest layer with nodes.
    pub fn max_level(&self) -> usize {
        self.header.max_level as usize
    }

    /// Reads the whole file and checks the body against the CRC in the header. Opening does not do this
    /// (it would touch every page); call it when verifying a collection.
    pub fn verify_checksum(&self) -> Result<()> {
        Ok(self
            .map
            .check_crc(HEADER_LEN, self.header.body_crc32, "graph body")?)
    }

    /// `len` little-endian u32 at byte offset `at`; empty if out of bounds or misaligned (validated
    /// layouts are neither: maps are page-aligned and sections 8-aligned).
    fn u32s(&self, at: usize, len: usize) -> &[u32] {
        at.checked_add(len.saturating_mul(4))
            .and_then(|end| self.map.bytes().get(at..end))
            .and_then(cast)
            .unwrap_or(&[])
    }

    /// The raw slots of `node` on `layer` (stored little-endian); empty if the node is not on it.
    pub(super) fn slots(&self, layer: usize, node: u32) -> &[u32] {
        if layer == 0 {
            let m0 = self.header.m0 as usize;
            if node >= self.header.node_count {
                return &[];
            }
            return self.u32s(self.layout.layer0_at + node as usize * m0 * 4, m0);
        }
        let Some(at) = self.layout.upper.get(layer - 1) else {
            return &[];
        };
        let nodes = self.u32s(at.nodes_at, at.count);
        // Bisection over the stored ids (ascending); a corrupt order only makes lookups miss.
        let (mut lo, mut hi) = (0usize, nodes.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let id = u32::from_le(nodes[mid]);
            match id.cmp(&node) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    let m = self.header.m as usize;
                    return self.u32s(at.links_at + mid * m * 4, m);
                }
            }
        }
        &[]
    }

    /// The `k` best rows reachable through the graph that `accept` lets through, best first.
    ///
    /// Greedy descent through the upper layers, then a beam of width `max(ef, k)` on layer 0. Rows that
    /// `accept` rejects are still walked through (the graph stays connected under a filter) but never
    /// returned; the walk only stops once `ef` accepted rows are held and nothing closer is left.
    pub fn search(
        &self,
        slab: VectorSlab<'_>,
        distance: Distance,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<Candidate> {
        self.search_rows(slab, None, distance, query, k, ef, accept)
    }

    /// [`GraphView::search`] on a graph built over the rows of `slab` that `rows` lists, when given
    /// (see [`GraphView::search_rows_by`]).
    #[allow(clippy::too_many_arguments)]
    pub fn search_rows(
        &self,
        slab: VectorSlab<'_>,
        rows: Option<&[u32]>,
        distance: Distance,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<Candidate> {
        if slab.dim == 0 || query.len() != slab.dim {
            return Vec::new();
        }
        let scorer = SlabScorer {
            slab,
            distance,
            query,
        };
        let found = match rows {
            Some(rows) => self.search_rows_by(&scorer, rows, k, ef, accept),
            None => self.search_by(&scorer, k, ef, accept),
        };
        found
            .into_iter()
            .map(|(offset, key)| Candidate {
                offset,
                score: key_to_score(distance, key),
            })
            .collect()
    }

    /// [`GraphView::search`] with rows scored by `scorer` (the rows, or their quantized codes):
    /// `(row, key)` pairs, lowest key first.
    pub fn search_by<S: RowScorer>(
        &self,
        scorer: &S,
        k: usize,
        ef: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<(u32, f32)> {
        let n = self.len().min(scorer.len());
        let entry = self.header.entry_point;
        if k == 0 || n == 0 || entry as usize >= n {
            return Vec::new();
        }
        let score = |o: u32| Scored::new(scorer.key(o), o);
        let in_range = |o: u32| o != NO_NODE && (o as usize) < n;

        let mut current = score(entry);
        for layer in (1..=self.max_level()).rev() {
            loop {
                let mut moved = false;
                let neighbours = self
                    .slots(layer, current.offset)
                    .iter()
                    .map(|&raw| u32::from_le(raw))
                    .take_while(|&nb| nb != NO_NODE)
                    .filter(|&nb| in_range(nb));
                // As on layer 0: every neighbour's first lines, then each row's rest while the one
                // before it is scored.
                neighbours.clone().for_each(|nb| scorer.prefetch(nb));
                let mut neighbours = neighbours.peekable();
                while let Some(nb) = neighbours.next() {
                    if let Some(&next) = neighbours.peek() {
                        scorer.prefetch_rest(next);
                    }
                    let s = score(nb);
                    if s < current {
                        current = s;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }

        let ef = ef.max(k);
        // Layer 0 as one slice, cast once per search rather than once per expanded node.
        let m0 = self.header.m0 as usize;
        let layer0 = self.u32s(self.layout.layer0_at, self.len() * m0);
        let slots0 = |node: u32| {
            let at = node as usize * m0;
            layer0.get(at..at + m0).unwrap_or(&[])
        };
        let found = with_visited(n, |visited| {
            let mut candidates: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(ef * 2);
            // Accepted rows only; the worst of them on top.
            let mut results: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef + 1);
            let mut fresh: Vec<u32> = Vec::with_capacity(self.header.m0 as usize);
            visited.insert(current.offset);
            candidates.push(Reverse(current));
            if accept(current.offset) {
                results.push(current);
            }
            while let Some(Reverse(c)) = candidates.pop() {
                if results.len() >= ef && results.peek().is_some_and(|worst| c > *worst) {
                    break;
                }
                // Collect the unvisited neighbours first and prefetch their rows, so the memory
                // loads overlap instead of stalling one distance at a time.
                fresh.clear();
                for &raw in slots0(c.offset) {
                    let nb = u32::from_le(raw);
                    if nb == NO_NODE {
                        break;
                    }
                    if in_range(nb) && visited.insert(nb) {
                        scorer.prefetch(nb);
                        fresh.push(nb);
                    }
                }
                for (i, &nb) in fresh.iter().enumerate() {
                    // The whole next row streams in while this one is scored; the first lines
                    // of all of them were requested above.
                    if let Some(&next) = fresh.get(i + 1) {
                        scorer.prefetch_rest(next);
                    }
                    let s = score(nb);
                    if results.len() < ef || results.peek().is_some_and(|worst| s < *worst) {
                        candidates.push(Reverse(s));
                        // Neighbour lists live apart from the vectors, so expanding a candidate
                        // later would start with a cache miss on its list: start that load now.
                        prefetch_u32s(slots0(nb));
                        if accept(nb) {
                            results.push(s);
                            if results.len() > ef {
                                results.pop();
                            }
                        }
                    }
                }
            }
            results.into_sorted_vec()
        });
        found
            .into_iter()
            .take(k)
            .map(|s| (s.offset, s.key))
            .collect()
    }
}

/// A scorer over the nodes of a graph built on some rows of another scorer: node `i` is row
/// `rows[i]`.
struct NodeRows<'a, S> {
    inner: &'a S,
    rows: &'a [u32],
}

impl<S: RowScorer> RowScorer for NodeRows<'_, S> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    #[inline]
    fn key(&self, node: u32) -> f32 {
        self.inner.key(self.rows[node as usize])
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        self.inner.prefetch(self.rows[node as usize]);
    }

    #[inline]
    fn prefetch_rest(&self, node: u32) {
        self.inner.prefetch_rest(self.rows[node as usize]);
    }
}

impl GraphView {
    /// [`GraphView::search_by`] on a graph built over some of `scorer`'s rows (node `i` is row
    /// `rows[i]`, as [`super::build_graph_of`] numbers them): `accept` and the results are in rows.
    /// Nodes past `rows` are never visited.
    pub fn search_rows_by<S: RowScorer>(
        &self,
        scorer: &S,
        rows: &[u32],
        k: usize,
        ef: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Vec<(u32, f32)> {
        let nodes = NodeRows {
            inner: scorer,
            rows,
        };
        let accept_node = |node: u32| accept(rows[node as usize]);
        self.search_by(&nodes, k, ef, &accept_node)
            .into_iter()
            .map(|(node, key)| (rows[node as usize], key))
            .collect()
    }
}

/// Rows of a slab against one query, keyed by [`order_key`].
pub struct SlabScorer<'a> {
    /// The rows.
    pub slab: VectorSlab<'a>,
    /// How they compare.
    pub distance: Distance,
    /// The query, `slab.dim` long.
    pub query: &'a [f32],
}

impl RowScorer for SlabScorer<'_> {
    fn len(&self) -> usize {
        self.slab.len()
    }

    #[inline]
    fn key(&self, row: u32) -> f32 {
        order_key(self.distance, self.query, self.slab.row(row))
    }

    #[inline]
    fn prefetch(&self, row: u32) {
        crate::index::prefetch_head(self.slab.row(row));
    }

    #[inline]
    fn prefetch_rest(&self, row: u32) {
        crate::index::prefetch_rest(self.slab.row(row));
    }
}

/// Hints the CPU to start loading a neighbour list (two cache lines cover 32 slots); the slots are
/// `u32` here and `AtomicU32` while a graph is built.
#[inline(always)]
pub(super) fn prefetch_u32s<T>(slots: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = slots.as_ptr().cast::<i8>();
        // SAFETY: prefetch is a hint that never faults; the addresses are inside `slots` (the second
        // only when the list is longer than one line).
        unsafe {
            if !slots.is_empty() {
                _mm_prefetch(p, _MM_HINT_T0);
            }
            if std::mem::size_of_val(slots) > 64 {
                _mm_prefetch(p.add(64), _MM_HINT_T0);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slots;
}

/// Checks everything open promises: header fields, layer counts, exact file size, entry point.
fn validate(map: &[u8], raw: &[u8; HEADER_LEN], h: &Header) -> std::result::Result<Layout, String> {
    if h.magic != MAGIC {
        return Err("not a Quiver graph file (bad magic)".into());
    }
    if h.version != FORMAT_VERSION {
        return Err(format!(
            "graph format version {} is not supported (this build reads {FORMAT_VERSION})",
            h.version
        ));
    }
    if Header::compute_crc(raw) != h.header_crc32 {
        return Err("graph header checksum mismatch".into());
    }
    if h.header_len as usize != HEADER_LEN {
        return Err(format!(
            "graph header length {} is not {HEADER_LEN}",
            h.header_len
        ));
    }
    if !(1..=256).contains(&h.m) || h.m0 < h.m || h.m0 > 512 {
        return Err(format!(
            "graph link counts m={} m0={} are out of range",
            h.m, h.m0
        ));
    }
    if h.max_level > MAX_LEVEL {
        return Err(format!(
            "graph max level {} exceeds {MAX_LEVEL}",
            h.max_level
        ));
    }
    if h.node_count == NO_NODE {
        return Err("graph node count is out of range".into());
    }
    let n = h.node_count as usize;
    let layers = h.max_level as usize + 1;
    let counts_end = HEADER_LEN + layers * 8;
    let counts_bytes = map.get(HEADER_LEN..counts_end).ok_or_else(|| {
        format!(
            "graph file is {} bytes, too short for its layer table",
            map.len()
        )
    })?;
    let counts: Vec<usize> = counts_bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            usize::try_from(u64::from_le_bytes(b)).unwrap_or(usize::MAX)
        })
        .collect();
    if counts[0] != n {
        return Err(format!(
            "graph layer 0 holds {} nodes, header says {n}",
            counts[0]
        ));
    }
    if let Some(l) = (1..layers).find(|&l| counts[l] > counts[l - 1]) {
        return Err(format!(
            "graph layer {l} has more nodes than the layer below"
        ));
    }
    let layout = Layout::compute(n, h.m as usize, h.m0 as usize, &counts)
        .ok_or_else(|| "graph sizes overflow".to_string())?;
    if layout.total != map.len() {
        return Err(format!(
            "graph file is {} bytes, its header implies {}",
            map.len(),
            layout.total
        ));
    }
    if n == 0 {
        if h.entry_point != NO_NODE || h.max_level != 0 {
            return Err("empty graph with an entry point".into());
        }
        return Ok(layout);
    }
    if h.entry_point as usize >= n {
        return Err(format!("graph entry point {} is not a node", h.entry_point));
    }
    if layers > 1 && counts[layers - 1] == 0 {
        return Err("graph top layer is empty".into());
    }
    let entry_level = map[layout.levels_at + h.entry_point as usize];
    if u32::from(entry_level) != h.max_level {
        return Err(format!(
            "graph entry point is on level {entry_level}, not the top level {}",
            h.max_level
        ));
    }
    Ok(layout)
}
