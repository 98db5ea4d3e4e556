//! HNSW in Quiver's own file (per layer, fixed-stride `u32` neighbour lists, levels, entry point): built
//! in that layout, written once, then memory-mapped and searched in place.
//!
//! - [`build`]: inserts every row of a slab into [`GraphLayers`]' arrays, in parallel.
//! - [`format`]: the file layout and [`write_graph`].
//! - [`view`]: [`GraphView`], the mapped file and the search over it.

mod build;
mod format;
mod view;

#[cfg(test)]
mod tests;

pub use build::{build_graph, build_graph_of};
pub use format::write_graph;
pub use view::{GraphView, SlabScorer};

/// Build parameters.
#[derive(Clone, Debug)]
pub struct HnswBuildParams {
    /// Neighbours per node on upper layers (layer 0 keeps `2·m`).
    pub m: usize,
    /// Build-time candidate list size.
    pub ef_construct: usize,
    /// Sequential insert in row order: the same rows always give the same graph (levels come from a
    /// fixed seed in every mode), for reproducible tests.
    pub deterministic: bool,
    /// Threads for parallel insert (0 = all cores).
    pub threads: usize,
}

impl Default for HnswBuildParams {
    fn default() -> Self {
        HnswBuildParams {
            m: 16,
            ef_construct: 100,
            deterministic: false,
            threads: 0,
        }
    }
}

/// A graph built in memory, ready to be written. Node ids are row offsets of the slab it was built
/// over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphLayers {
    /// Slots per node on upper layers.
    m: u32,
    /// Slots per node on layer 0.
    m0: u32,
    /// Where searches start; [`NO_NODE`] for an empty graph.
    entry_point: u32,
    /// Highest layer that has nodes (0 for an empty graph).
    max_level: u32,
    /// Top layer of each node.
    levels: Vec<u8>,
    /// `levels.len() · m0` slots, unused ones [`NO_NODE`].
    layer0: Vec<u32>,
    /// Layers 1..=max_level.
    upper: Vec<UpperLayer>,
}

/// One layer above 0: only the nodes whose level reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UpperLayer {
    /// Node ids on this layer, ascending (searched by bisection).
    nodes: Vec<u32>,
    /// `nodes.len() · m` slots, in the order of `nodes`.
    links: Vec<u32>,
}

/// An empty neighbour slot, and the entry point of an empty graph.
pub const NO_NODE: u32 = u32::MAX;

impl GraphLayers {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// True for a graph without nodes.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Highest layer with nodes.
    pub fn max_level(&self) -> usize {
        self.max_level as usize
    }

    /// The node searches start from, if any.
    pub fn entry_point(&self) -> Option<u32> {
        (self.entry_point != NO_NODE).then_some(self.entry_point)
    }

    /// Neighbours of `node` on `layer` (empty when the node does not reach that layer).
    pub fn neighbours(&self, layer: usize, node: u32) -> impl Iterator<Item = u32> + '_ {
        let slots: &[u32] = if layer == 0 {
            let m0 = self.m0 as usize;
            self.layer0
                .get(node as usize * m0..(node as usize + 1) * m0)
                .unwrap_or(&[])
        } else {
            let m = self.m as usize;
            self.upper
                .get(layer - 1)
                .and_then(|l| {
                    let pos = l.nodes.binary_search(&node).ok()?;
                    l.links.get(pos * m..(pos + 1) * m)
                })
                .unwrap_or(&[])
        };
        slots.iter().copied().take_while(|&n| n != NO_NODE)
    }
}
