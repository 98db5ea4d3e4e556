//! Builds the graph directly in the layout the file stores ([`GraphLayers`]): every node's level is
//! drawn up front, so each layer's node set and fixed-stride slot array exist before the first insert,
//! and nodes are then inserted (in parallel unless asked otherwise) into those arrays in place. Nothing
//! is copied or exported afterwards.
//!
//! Concurrency: a node's neighbour lists (all its layers) change only under that node's lock; walks read
//! them without locking, slot by slot, through atomics. A walk that races with a rewrite can see a mix
//! of the old and the new list (every slot always holds a node id or [`NO_NODE`]); the visited set
//! absorbs duplicates and a missed neighbour only costs the walk a detour, as in hnswlib. The entry point
//! changes under one global lock, which an insert whose level tops the graph holds for its whole insert.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::format::MAX_LEVEL;
use super::view::prefetch_u32s;
use super::{GraphLayers, HnswBuildParams, UpperLayer, NO_NODE};
use crate::config::Distance;
use crate::distance::order_key;
use crate::index::topk::Scored;
use crate::index::visited::with_visited;
use crate::index::VectorSlab;
use crate::index::{prefetch_head, prefetch_rest};
use crate::{Error, Result};

/// Seed of the level draw. Levels depend on nothing else (not on threads or timing), so a sequential
/// build of the same rows is reproducible bit for bit.
const LEVEL_SEED: u64 = 0x5155_4956_4552_4857;

/// Rows inserted between two checks of the stop flag in a sequential build.
const STOP_CHECK_ROWS: usize = 2048;

/// Builds the graph over every row of `slab`. Checks `stop` while inserting and returns
/// [`crate::Error::Cancelled`] when it is set.
pub fn build_graph(
    slab: VectorSlab<'_>,
    distance: Distance,
    params: &HnswBuildParams,
    stop: &AtomicBool,
) -> Result<GraphLayers> {
    build_graph_of(slab, None, distance, params, stop)
}

/// [`build_graph`] over the rows of `slab` that `rows` lists, when given: node `i` of the graph is
/// row `rows[i]` (a value graph's nodes are the rows of one payload value's points).
pub fn build_graph_of(
    slab: VectorSlab<'_>,
    rows: Option<&[u32]>,
    distance: Distance,
    params: &HnswBuildParams,
    stop: &AtomicBool,
) -> Result<GraphLayers> {
    if !(2..=256).contains(&params.m) {
        return Err(Error::InvalidInput(format!(
            "hnsw m must be between 2 and 256, got {}",
            params.m
        )));
    }
    if params.ef_construct == 0 {
        return Err(Error::InvalidInput(
            "hnsw ef_construct must be at least 1".into(),
        ));
    }
    if slab.dim == 0 {
        return Err(Error::InvalidInput(
            "vector dimension must be at least 1".into(),
        ));
    }
    if let Some(r) = rows.and_then(|r| r.iter().find(|&&r| r as usize >= slab.len())) {
        return Err(Error::InvalidInput(format!(
            "graph node row {r} is past the {} rows of the slab",
            slab.len()
        )));
    }
    let n = rows.map_or(slab.len(), <[u32]>::len);
    if n >= NO_NODE as usize {
        return Err(Error::InvalidInput(format!(
            "a segment holds at most {} vectors, got {n}",
            NO_NODE - 1
        )));
    }
    let m = params.m as u32;
    if n == 0 {
        return Ok(GraphLayers {
            m,
            m0: 2 * m,
            entry_point: NO_NODE,
            max_level: 0,
            levels: Vec::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
        });
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }

    let builder = Builder::new(slab, rows, distance, params, draw_levels(n, params.m));
    if params.deterministic || params.threads == 1 {
        let mut scratch = Scratch::default();
        for node in 0..n as u32 {
            if (node as usize).is_multiple_of(STOP_CHECK_ROWS) && stop.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            builder.insert(node, &mut scratch);
        }
    } else {
        let insert_all = || {
            (0..n as u32)
                .into_par_iter()
                .try_for_each_init(Scratch::default, |scratch, node| {
                    if stop.load(Ordering::Relaxed) {
                        return Err(Error::Cancelled);
                    }
                    builder.insert(node, scratch);
                    Ok(())
                })
        };
        match threads_pool(params.threads) {
            Some(pool) => pool.install(insert_all)?,
            None => insert_all()?,
        }
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let mut graph = builder.finish();
    repair_unreachable(&mut graph);
    Ok(graph)
}

/// Each node's top layer: `floor(-ln(u) · mL)` with `mL = 1/ln(m)` (Malkov & Yashunin), so a layer holds
/// about `1/m` of the nodes of the layer below; capped at the highest layer the file format allows.
fn draw_levels(n: usize, m: usize) -> Vec<u8> {
    let ml = 1.0 / (m as f64).ln();
    let mut rng = rand::rngs::StdRng::seed_from_u64(LEVEL_SEED);
    (0..n)
        .map(|_| {
            // In (0, 1], so the logarithm is finite.
            let u = 1.0 - rng.random::<f64>();
            let level = (-u.ln() * ml).floor();
            level.min(f64::from(MAX_LEVEL)) as u8
        })
        .collect()
}

/// A dedicated pool when the caller asked for a thread count other than the global pool's.
fn threads_pool(threads: usize) -> Option<rayon::ThreadPool> {
    if threads == 0 || threads == rayon::current_num_threads() {
        return None;
    }
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => Some(pool),
        Err(e) => {
            tracing::warn!("cannot start {threads} build threads ({e}); using the global pool");
            None
        }
    }
}

/// Where searches start: the first node inserted on the highest layer so far.
#[derive(Clone, Copy)]
struct Entry {
    node: u32,
    level: u8,
}

/// An upper layer while it is built: its node set is final, its slots are filled by the inserts.
struct BuildingLayer {
    nodes: Vec<u32>,
    links: Vec<AtomicU32>,
}

/// The graph under construction, shared by the inserting threads.
struct Builder<'a> {
    slab: VectorSlab<'a>,
    /// Node `i` is row `rows[i]` of the slab; without it, node `i` is row `i`.
    rows: Option<&'a [u32]>,
    distance: Distance,
    m: usize,
    m0: usize,
    ef_construct: usize,
    levels: Vec<u8>,
    layer0: Vec<AtomicU32>,
    upper: Vec<BuildingLayer>,
    /// One per node; held while any of that node's lists is written.
    locks: Vec<Mutex<()>>,
    /// `None` until the first insert.
    entry: Mutex<Option<Entry>>,
}

/// Per-thread buffers, reused from one insert to the next.
#[derive(Default)]
struct Scratch {
    candidates: BinaryHeap<Reverse<Scored>>,
    results: BinaryHeap<Scored>,
    /// The last walk's result, nearest first; the next layer's walk starts from it.
    found: Vec<Scored>,
    /// The new node's neighbours on the current layer.
    selected: Vec<Scored>,
    /// A full list plus the new node, and what is kept of it, while a neighbour's list is re-selected.
    pool: Vec<Scored>,
    kept: Vec<Scored>,
    links: Vec<u32>,
    fresh: Vec<u32>,
}

fn empty_slots(count: usize) -> Vec<AtomicU32> {
    (0..count).map(|_| AtomicU32::new(NO_NODE)).collect()
}

impl<'a> Builder<'a> {
    fn new(
        slab: VectorSlab<'a>,
        rows: Option<&'a [u32]>,
        distance: Distance,
        params: &HnswBuildParams,
        levels: Vec<u8>,
    ) -> Self {
        let n = levels.len();
        let (m, m0) = (params.m, 2 * params.m);
        let top = levels.iter().copied().max().unwrap_or(0) as usize;
        let upper = (1..=top)
            .map(|l| {
                let nodes: Vec<u32> = (0..n as u32)
                    .filter(|&i| levels[i as usize] as usize >= l)
                    .collect();
                BuildingLayer {
                    links: empty_slots(nodes.len() * m),
                    nodes,
                }
            })
            .collect();
        Builder {
            slab,
            rows,
            distance,
            m,
            m0,
            ef_construct: params.ef_construct,
            layer0: empty_slots(n * m0),
            upper,
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            levels,
            entry: Mutex::new(None),
        }
    }

    /// Slot capacity on `layer`.
    fn cap(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// The slots of `node` on `layer` (the node must reach the layer).
    fn slots(&self, layer: usize, node: u32) -> &[AtomicU32] {
        if layer == 0 {
            let at = node as usize * self.m0;
            return &self.layer0[at..at + self.m0];
        }
        let l = &self.upper[layer - 1];
        match l.nodes.binary_search(&node) {
            Ok(pos) => &l.links[pos * self.m..(pos + 1) * self.m],
            Err(_) => &[],
        }
    }

    /// Copies the current neighbours of `node` on `layer` into `out`.
    fn read_links(&self, layer: usize, node: u32, out: &mut Vec<u32>) {
        out.clear();
        for slot in self.slots(layer, node) {
            let nb = slot.load(Ordering::Relaxed);
            if nb == NO_NODE {
                break;
            }
            out.push(nb);
        }
    }

    /// The vector of `node`.
    #[inline]
    fn row(&self, node: u32) -> &'a [f32] {
        match self.rows {
            Some(rows) => self.slab.row(rows[node as usize]),
            None => self.slab.row(node),
        }
    }

    #[inline]
    fn key(&self, a: &[f32], b: u32) -> f32 {
        order_key(self.distance, a, self.row(b))
    }

    fn insert(&self, node: u32, s: &mut Scratch) {
        let level = self.levels[node as usize];
        let mut entry_lock = self.entry.lock();
        let Some(entry) = *entry_lock else {
            *entry_lock = Some(Entry { node, level });
            return;
        };
        // An insert that will top the graph keeps the lock until it is linked in and has replaced the
        // entry point, so no other insert starts from a half-linked top; any other releases it now.
        let raises = level > entry.level;
        let entry_lock = raises.then_some(entry_lock);

        let q = self.row(node);
        let mut current = Scored::new(self.key(q, entry.node), entry.node);
        for layer in (level as usize + 1..=entry.level as usize).rev() {
            current = self.greedy(q, current, layer, &mut s.links);
        }
        s.found.clear();
        s.found.push(current);
        for layer in (0..=level.min(entry.level) as usize).rev() {
            self.search_layer(node, q, layer, s);
            let cap = self.cap(layer);
            select_neighbours(self, &s.found, cap, &mut s.selected);
            {
                let _own = self.locks[node as usize].lock();
                write_links(self.slots(layer, node), s.selected.iter().map(|c| c.offset));
            }
            for i in 0..s.selected.len() {
                let nb = s.selected[i];
                self.link_back(nb.offset, node, nb.key, layer, s);
            }
        }
        if let Some(mut lock) = entry_lock {
            *lock = Some(Entry { node, level });
        }
    }

    /// Moves from `current` to its nearest neighbour on `layer` until none is nearer to `q`.
    fn greedy(&self, q: &[f32], mut current: Scored, layer: usize, links: &mut Vec<u32>) -> Scored {
        loop {
            self.read_links(layer, current.offset, links);
            let mut moved = false;
            for &nb in links.iter() {
                let s = Scored::new(self.key(q, nb), nb);
                if s < current {
                    current = s;
                    moved = true;
                }
            }
            if !moved {
                return current;
            }
        }
    }

    /// The `ef_construct` nearest nodes to `q` (the row of `node`) on `layer` reachable from `s.found`,
    /// which it replaces, nearest first. `node` itself is never among them: a concurrent insert may
    /// already have linked it on this layer.
    fn search_layer(&self, node: u32, q: &[f32], layer: usize, s: &mut Scratch) {
        let ef = self.ef_construct;
        let n = self.levels.len();
        s.candidates.clear();
        s.results.clear();
        let Scratch {
            candidates,
            results,
            found,
            links,
            fresh,
            ..
        } = s;
        with_visited(n, |visited| {
            visited.insert(node);
            for &c in found.iter() {
                if visited.insert(c.offset) {
                    candidates.push(Reverse(c));
                    results.push(c);
                }
            }
            while results.len() > ef {
                results.pop();
            }
            while let Some(Reverse(c)) = candidates.pop() {
                if results.len() >= ef && results.peek().is_some_and(|worst| c > *worst) {
                    break;
                }
                self.read_links(layer, c.offset, links);
                fresh.clear();
                for &nb in links.iter() {
                    if visited.insert(nb) {
                        prefetch_head(self.row(nb));
                        fresh.push(nb);
                    }
                }
                for (i, &nb) in fresh.iter().enumerate() {
                    if let Some(&next) = fresh.get(i + 1) {
                        prefetch_rest(self.row(next));
                    }
                    let sc = Scored::new(self.key(q, nb), nb);
                    if results.len() < ef || results.peek().is_some_and(|worst| sc < *worst) {
                        candidates.push(Reverse(sc));
                        // Its list lies apart from the rows: start that load before it is expanded.
                        prefetch_u32s(self.slots(layer, nb));
                        results.push(sc);
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        });
        found.clear();
        found.extend(results.drain());
        found.sort_unstable();
    }

    /// Adds `node` to `target`'s list on `layer`; a full list is re-selected with the new node among
    /// the candidates, so it may drop the new node or an old neighbour.
    fn link_back(&self, target: u32, node: u32, key: f32, layer: usize, s: &mut Scratch) {
        let _lock = self.locks[target as usize].lock();
        let slots = self.slots(layer, target);
        let mut filled = 0;
        for slot in slots {
            let nb = slot.load(Ordering::Relaxed);
            if nb == NO_NODE {
                break;
            }
            if nb == node {
                return;
            }
            filled += 1;
        }
        if filled < slots.len() {
            slots[filled].store(node, Ordering::Relaxed);
            return;
        }
        let t = self.row(target);
        s.pool.clear();
        s.pool.push(Scored::new(key, node));
        for slot in slots {
            let nb = slot.load(Ordering::Relaxed);
            s.pool.push(Scored::new(self.key(t, nb), nb));
        }
        s.pool.sort_unstable();
        select_neighbours(self, &s.pool, slots.len(), &mut s.kept);
        write_links(slots, s.kept.iter().map(|c| c.offset));
    }

    /// Hands over the arrays (no copy: `AtomicU32` and `u32` share their layout, and the in-place
    /// collect reuses each allocation).
    fn finish(self) -> GraphLayers {
        let entry = self
            .entry
            .into_inner()
            .expect("a non-empty build inserted at least one node");
        let plain =
            |v: Vec<AtomicU32>| -> Vec<u32> { v.into_iter().map(AtomicU32::into_inner).collect() };
        let upper = self
            .upper
            .into_iter()
            .map(|l| UpperLayer {
                nodes: l.nodes,
                links: plain(l.links),
            })
            .collect::<Vec<_>>();
        debug_assert_eq!(upper.len(), entry.level as usize);
        GraphLayers {
            m: self.m as u32,
            m0: self.m0 as u32,
            entry_point: entry.node,
            max_level: u32::from(entry.level),
            levels: self.levels,
            layer0: plain(self.layer0),
            upper,
        }
    }
}

/// The neighbour-selection heuristic of Malkov & Yashunin (Algorithm 4, without extending or keeping
/// pruned candidates): walking `candidates` nearest first, keep one only if it is nearer to the base
/// node than to every neighbour kept so far, up to `cap`. This keeps links pointing in different
/// directions instead of into one cluster, which is what lets a walk leave a cluster.
fn select_neighbours(b: &Builder<'_>, candidates: &[Scored], cap: usize, out: &mut Vec<Scored>) {
    out.clear();
    for &c in candidates {
        if out.len() >= cap {
            break;
        }
        let row = b.row(c.offset);
        if out.iter().all(|kept| b.key(row, kept.offset) >= c.key) {
            out.push(c);
        }
    }
}

/// Writes `ids` into `slots` and clears the rest.
fn write_links(slots: &[AtomicU32], ids: impl Iterator<Item = u32>) {
    let mut used = 0;
    for (slot, id) in slots.iter().zip(ids) {
        slot.store(id, Ordering::Relaxed);
        used += 1;
    }
    for slot in &slots[used..] {
        slot.store(NO_NODE, Ordering::Relaxed);
    }
}

/// Rounds of [`repair_unreachable`]: a round can, rarely, cut a node loose by taking the slot of its
/// link; the next round links it back. In practice one or two rounds reach every node.
const REPAIR_ROUNDS: usize = 8;

/// Makes every layer-0 node reachable from the entry point. Neighbour selection can prune every link
/// into a node, or into a small cluster whose only links are among themselves (each list only keeps
/// what suits its own node), and such nodes are never found by any search. Each unreached node gets a
/// link from its nearest neighbour that is reached (its own list is ordered by distance), or from the
/// entry point when none is; the link takes a free slot, or the last slot whose target has another
/// incoming link.
pub(super) fn repair_unreachable(graph: &mut GraphLayers) {
    let n = graph.len();
    let entry = graph.entry_point;
    if n == 0 || entry == NO_NODE {
        return;
    }
    let m0 = graph.m0 as usize;
    let mut repaired = 0usize;
    for _ in 0..REPAIR_ROUNDS {
        let mut indegree = vec![0u32; n];
        for &nb in &graph.layer0 {
            if nb != NO_NODE {
                indegree[nb as usize] += 1;
            }
        }
        let mut seen = vec![false; n];
        reach(graph, entry, &mut seen);
        if seen.iter().all(|&s| s) {
            break;
        }
        for v in 0..n {
            if seen[v] {
                continue;
            }
            let from = graph.layer0[v * m0..(v + 1) * m0]
                .iter()
                .copied()
                .take_while(|&u| u != NO_NODE)
                .find(|&u| seen[u as usize])
                .unwrap_or(entry);
            if link_into(graph, from, v as u32, &mut indegree) {
                repaired += 1;
                reach(graph, v as u32, &mut seen);
            }
        }
    }
    if repaired > 0 {
        tracing::debug!("linked {repaired} unreachable nodes into layer 0");
    }
}

/// Marks every node reachable on layer 0 from `start` (and `start`).
fn reach(graph: &GraphLayers, start: u32, seen: &mut [bool]) {
    let m0 = graph.m0 as usize;
    let mut stack = vec![start];
    seen[start as usize] = true;
    while let Some(v) = stack.pop() {
        for &nb in &graph.layer0[v as usize * m0..(v as usize + 1) * m0] {
            if nb != NO_NODE && !seen[nb as usize] {
                seen[nb as usize] = true;
                stack.push(nb);
            }
        }
    }
}

/// Adds the link `from → to` on layer 0, in a free slot or in place of the last link whose target keeps
/// another incoming link. False when `from`'s list has neither.
fn link_into(graph: &mut GraphLayers, from: u32, to: u32, indegree: &mut [u32]) -> bool {
    let m0 = graph.m0 as usize;
    let slots = &mut graph.layer0[from as usize * m0..(from as usize + 1) * m0];
    if slots.contains(&to) {
        return false;
    }
    let slot = match slots.iter().position(|&s| s == NO_NODE) {
        Some(free) => free,
        None => match slots.iter().rposition(|&s| indegree[s as usize] > 1) {
            Some(last) => {
                indegree[slots[last] as usize] -= 1;
                last
            }
            None => return false,
        },
    };
    slots[slot] = to;
    indegree[to as usize] += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic_keeps_one_link_per_direction() {
        // On a line: the base node at 0, candidates at 1, 2, 3 and -1. The node at 2 is nearer to the
        // one at 1 than to the base, so the walk reaches it through 1; only 1 and -1 are kept.
        let data = [0.0f32, 1.0, 2.0, 3.0, -1.0];
        let slab = VectorSlab {
            data: &data,
            dim: 1,
        };
        let params = HnswBuildParams {
            m: 4,
            ..HnswBuildParams::default()
        };
        let b = Builder::new(slab, None, Distance::Euclid, &params, vec![0; 5]);
        let mut candidates: Vec<Scored> = (1..5u32)
            .map(|i| Scored::new(b.key(slab.row(0), i), i))
            .collect();
        candidates.sort_unstable();
        let mut out = Vec::new();
        select_neighbours(&b, &candidates, 4, &mut out);
        let kept: Vec<u32> = out.iter().map(|c| c.offset).collect();
        assert_eq!(kept, vec![1, 4]);
        select_neighbours(&b, &candidates, 1, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn levels_follow_the_exponential_law_and_repeat() {
        let levels = draw_levels(100_000, 16);
        assert_eq!(levels, draw_levels(100_000, 16));
        // P(level >= l) = m^-l.
        for (l, want) in [(1u8, 6250.0), (2, 390.6)] {
            let got = levels.iter().filter(|&&x| x >= l).count() as f64;
            assert!(
                (got - want).abs() < 0.1 * want,
                "level {l}: {got} nodes, want {want}"
            );
        }
        assert!(levels.iter().all(|&l| u32::from(l) <= MAX_LEVEL));
    }
}
