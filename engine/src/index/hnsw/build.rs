//! Builds a graph with `hnsw_rs` and copies it out of `hnsw_rs`'s pointer-heavy structure into
//! [`GraphLayers`]' flat arrays.

use std::sync::atomic::{AtomicBool, Ordering};

use hnsw_rs::anndists::dist::Distance as HnswDistance;
use hnsw_rs::hnsw::Hnsw;

use super::{GraphLayers, HnswBuildParams, UpperLayer, NO_NODE};
use crate::config::Distance;
use crate::index::VectorSlab;
use crate::kernels::{dot, l2_squared};
use crate::{Error, Result};

/// `hnsw_rs` supports at most 16 layers.
const MAX_LAYERS: usize = 16;

/// Rows inserted between two checks of the stop flag.
const STOP_CHECK_ROWS: usize = 2048;

/// The distance `hnsw_rs` builds with. It must never be negative or NaN: `hnsw_rs` asserts on the first
/// and panics on the second, and its own `DistDot` asserts unit length. Similarities become
/// `offset - dot` with `offset` above any dot product between rows of the slab (Cauchy-Schwarz), which
/// orders exactly like `-dot` and keeps every distance positive, normalised input or not. Euclid uses
/// the squared distance: the build only compares distances, and squaring keeps the order.
pub(super) struct BuildDistance {
    pub(super) distance: Distance,
    pub(super) dot_offset: f32,
}

impl HnswDistance<f32> for BuildDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let d = match self.distance {
            Distance::Cosine | Distance::Dot => self.dot_offset - dot(a, b),
            Distance::Euclid => l2_squared(a, b),
        };
        if d.is_nan() {
            f32::MAX
        } else {
            d.max(0.0)
        }
    }
}

/// Builds the graph over every row of `slab`. Checks `stop` between chunks and returns
/// [`crate::Error::Cancelled`] when set.
pub fn build_graph(
    slab: VectorSlab<'_>,
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
    let n = slab.len();
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

    let max_sq = slab
        .data
        .chunks_exact(slab.dim)
        .map(|r| dot(r, r))
        .filter(|x| x.is_finite())
        .fold(0.0f32, f32::max);
    let dist = BuildDistance {
        distance,
        // The margin absorbs rounding in the dot products; 1 covers unit vectors and all-zero slabs.
        dot_offset: max_sq.max(1.0) * 1.001,
    };
    let hnsw = Hnsw::<f32, BuildDistance>::new(params.m, n, MAX_LAYERS, params.ef_construct, dist);

    let rows: Vec<(&[f32], usize)> = slab.data.chunks_exact(slab.dim).zip(0..n).collect();
    if params.deterministic || params.threads == 1 {
        // hnsw_rs seeds its level generator with a constant, so a sequential build is reproducible.
        for chunk in rows.chunks(STOP_CHECK_ROWS) {
            if stop.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            for &row in chunk {
                hnsw.insert_slice(row);
            }
        }
    } else {
        let insert_all = || -> Result<()> {
            let chunk_rows = STOP_CHECK_ROWS * rayon::current_num_threads().max(1);
            for chunk in rows.chunks(chunk_rows) {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                hnsw.parallel_insert_slice(&chunk.to_vec());
            }
            Ok(())
        };
        match threads_pool(params.threads) {
            Some(pool) => pool.install(insert_all)?,
            None => insert_all()?,
        }
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    let mut graph = export(&hnsw, n, m);
    repair_unreachable(&mut graph);
    Ok(graph)
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

/// Copies `hnsw_rs`'s graph into flat arrays. Node ids are the data ids given at insert (row offsets).
pub(super) fn export(hnsw: &Hnsw<'_, f32, BuildDistance>, n: usize, m: u32) -> GraphLayers {
    let m0 = 2 * m;
    let indexation = hnsw.get_point_indexation();
    let top = indexation.get_max_level_observed() as usize;

    // hnsw_rs files each point under its own top level.
    let mut levels = vec![u8::MAX; n];
    for level in 0..=top {
        for point in indexation.get_layer_iterator(level) {
            if let Some(slot) = levels.get_mut(point.get_origin_id()) {
                *slot = level as u8;
            }
        }
    }
    let missing = levels.iter().filter(|&&l| l == u8::MAX).count();
    if missing > 0 {
        // Every row is inserted, so this would be a bug in hnsw_rs; keep the rows searchable by exact
        // scan and out of the graph rather than fail the seal.
        tracing::error!("hnsw_rs lost {missing} of {n} points; they are left out of the graph");
    }

    let mut layer0 = vec![NO_NODE; n * m0 as usize];
    let mut upper: Vec<UpperLayer> = (1..=top)
        .map(|l| {
            let nodes: Vec<u32> = (0..n as u32)
                .filter(|&i| levels[i as usize] != u8::MAX && levels[i as usize] as usize >= l)
                .collect();
            UpperLayer {
                links: vec![NO_NODE; nodes.len() * m as usize],
                nodes,
            }
        })
        .collect();

    for level in 0..=top {
        for point in indexation.get_layer_iterator(level) {
            let id = point.get_origin_id();
            if id >= n {
                continue;
            }
            let neighbourhood = point.get_neighborhood_id();
            // hnsw_rs may also keep entries on layers above a point's level (a by-product of its insert);
            // only layers the point belongs to are real.
            for (l, list) in neighbourhood.iter().enumerate().take(level + 1) {
                let slots: &mut [u32] = if l == 0 {
                    &mut layer0[id * m0 as usize..(id + 1) * m0 as usize]
                } else {
                    let layer = &mut upper[l - 1];
                    let Ok(pos) = layer.nodes.binary_search(&(id as u32)) else {
                        continue;
                    };
                    &mut layer.links[pos * m as usize..(pos + 1) * m as usize]
                };
                let mut filled = 0;
                // hnsw_rs keeps each list sorted nearest first; keep that order.
                for nb in list {
                    let nb_id = nb.d_id;
                    if filled == slots.len() {
                        break;
                    }
                    let valid = nb_id < n
                        && nb_id != id
                        && levels[nb_id] != u8::MAX
                        && levels[nb_id] as usize >= l
                        && !slots[..filled].contains(&(nb_id as u32));
                    if valid {
                        slots[filled] = nb_id as u32;
                        filled += 1;
                    }
                }
            }
        }
    }

    // The first point filed on the top layer is hnsw_rs's entry point (it replaces the entry point only
    // on a strictly higher level).
    let entry_point = indexation
        .get_layer_iterator(top)
        .next()
        .map(|p| p.get_origin_id() as u32)
        .filter(|&id| (id as usize) < n)
        .unwrap_or(0);
    for l in &mut levels {
        if *l == u8::MAX {
            *l = 0;
        }
    }
    GraphLayers {
        m,
        m0,
        entry_point,
        max_level: top as u32,
        levels,
        layer0,
        upper,
    }
}

/// Gives every layer-0 node without an incoming link one, from its nearest neighbour. Contended
/// parallel inserts in hnsw_rs can leave a node that no other node links to, which no search can reach
/// (hnswlib-rs issue 32). The link takes a free slot, or replaces the farthest neighbour.
pub(super) fn repair_unreachable(graph: &mut GraphLayers) {
    let n = graph.len();
    let m0 = graph.m0 as usize;
    let mut indegree = vec![0u32; n];
    for &nb in &graph.layer0 {
        if nb != NO_NODE {
            indegree[nb as usize] += 1;
        }
    }
    let mut repaired = 0usize;
    for v in 0..n {
        if indegree[v] > 0 || v as u32 == graph.entry_point {
            continue;
        }
        let Some(&u) = graph.layer0[v * m0..(v + 1) * m0].first() else {
            continue;
        };
        if u == NO_NODE {
            continue;
        }
        let slots = &mut graph.layer0[u as usize * m0..(u as usize + 1) * m0];
        match slots.iter().position(|&s| s == NO_NODE) {
            Some(free) => slots[free] = v as u32,
            None => {
                let dropped = slots[m0 - 1];
                // Do not orphan the node we would drop.
                if indegree[dropped as usize] <= 1 {
                    continue;
                }
                indegree[dropped as usize] -= 1;
                slots[m0 - 1] = v as u32;
            }
        }
        indegree[v] += 1;
        repaired += 1;
    }
    if repaired > 0 {
        tracing::debug!("linked {repaired} unreachable nodes into layer 0");
    }
}
