//! The graph file. Everything is little-endian and every section starts 8-byte aligned, so a mapped
//! file is read in place:
//!
//! ```text
//! header              64 bytes, see `Header`
//! layer counts        u64 × (max_level + 1)       nodes on each layer; layer 0 holds all of them
//! levels              u8 × n, zero-padded to 8    top layer of each node
//! layer 0 links       u32 × n × m0, padded        node i's slots at [i·m0, (i+1)·m0)
//! for layer 1..=max_level:
//!   node ids          u32 × count, padded         ascending: a node's position is found by bisection
//!   links             u32 × count × m, padded     slots in the order of the node ids
//! ```
//!
//! Unused slots hold `u32::MAX` and come after the used ones. The header carries the CRC-32 of
//! everything after it (checked by [`super::GraphView::verify_checksum`], not on every open) and its
//! own CRC-32 (checked on open).

use std::io::Write;
use std::path::Path;

use super::GraphLayers;
use crate::Result;

/// First bytes of every graph file.
pub(super) const MAGIC: [u8; 8] = *b"QVRHNSWG";
/// Bumped on any layout change; older readers refuse newer files.
pub(super) const FORMAT_VERSION: u32 = 1;
/// Size of [`Header`] on disk.
pub(super) const HEADER_LEN: usize = 64;
/// Highest layer a graph may have (levels are capped here when drawn).
pub(super) const MAX_LEVEL: u32 = 15;

/// The fixed header. Fields are encoded one by one in little-endian; `repr(C)` pins the order and
/// offsets the encoding follows, with the padding spelled out.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_len: u32,
    pub node_count: u32,
    pub max_level: u32,
    pub entry_point: u32,
    pub m: u32,
    pub m0: u32,
    pub _pad: u32,
    /// CRC-32 of every byte after the header.
    pub body_crc32: u32,
    /// CRC-32 of the 64 header bytes with this field zeroed.
    pub header_crc32: u32,
    pub _reserved: [u32; 4],
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_LEN);

const HEADER_CRC_AT: usize = 44;

impl Header {
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.magic);
        let words = [
            self.version,
            self.header_len,
            self.node_count,
            self.max_level,
            self.entry_point,
            self.m,
            self.m0,
            self._pad,
            self.body_crc32,
            self.header_crc32,
            self._reserved[0],
            self._reserved[1],
            self._reserved[2],
            self._reserved[3],
        ];
        for (i, w) in words.iter().enumerate() {
            b[8 + 4 * i..12 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Header {
        let w = |i: usize| {
            u32::from_le_bytes([b[8 + 4 * i], b[9 + 4 * i], b[10 + 4 * i], b[11 + 4 * i]])
        };
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[0..8]);
        Header {
            magic,
            version: w(0),
            header_len: w(1),
            node_count: w(2),
            max_level: w(3),
            entry_point: w(4),
            m: w(5),
            m0: w(6),
            _pad: w(7),
            body_crc32: w(8),
            header_crc32: w(9),
            _reserved: [w(10), w(11), w(12), w(13)],
        }
    }

    /// CRC of the encoded header with its own CRC field zeroed.
    pub fn compute_crc(bytes: &[u8; HEADER_LEN]) -> u32 {
        let mut copy = *bytes;
        copy[HEADER_CRC_AT..HEADER_CRC_AT + 4].fill(0);
        crc32fast::hash(&copy)
    }
}

/// Byte offsets of the sections, derived from the header and the layer counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub levels_at: usize,
    pub layer0_at: usize,
    /// Per upper layer: node count, node ids offset, links offset.
    pub upper: Vec<UpperAt>,
    pub total: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UpperAt {
    pub count: usize,
    pub nodes_at: usize,
    pub links_at: usize,
}

fn pad8(x: usize) -> Option<usize> {
    x.checked_add(7).map(|v| v & !7)
}

impl Layout {
    /// `counts[l]` is the number of nodes on layer `l`. `None` when the sizes overflow.
    pub fn compute(n: usize, m: usize, m0: usize, counts: &[usize]) -> Option<Layout> {
        let mut at = HEADER_LEN.checked_add(counts.len().checked_mul(8)?)?;
        let levels_at = at;
        at = pad8(at.checked_add(n)?)?;
        let layer0_at = at;
        at = pad8(at.checked_add(n.checked_mul(m0)?.checked_mul(4)?)?)?;
        let mut upper = Vec::with_capacity(counts.len().saturating_sub(1));
        for &count in counts.iter().skip(1) {
            let nodes_at = at;
            at = pad8(at.checked_add(count.checked_mul(4)?)?)?;
            let links_at = at;
            at = pad8(at.checked_add(count.checked_mul(m)?.checked_mul(4)?)?)?;
            upper.push(UpperAt {
                count,
                nodes_at,
                links_at,
            });
        }
        Some(Layout {
            levels_at,
            layer0_at,
            upper,
            total: at,
        })
    }
}

/// Writes the graph file atomically (temp, fsync, rename, fsync dir). Returns size and checksum for the
/// manifest.
pub fn write_graph(path: &Path, graph: &GraphLayers) -> Result<quiver_storage::fs::WrittenFile> {
    // First pass computes the body CRC for the header, second pass writes; no copy of the graph is held.
    let mut sink = CrcSink(crc32fast::Hasher::new());
    write_body(graph, &mut sink).map_err(|e| quiver_storage::Error::io(path, e))?;
    let mut header = Header {
        magic: MAGIC,
        version: FORMAT_VERSION,
        header_len: HEADER_LEN as u32,
        node_count: graph.len() as u32,
        max_level: graph.max_level,
        entry_point: graph.entry_point,
        m: graph.m,
        m0: graph.m0,
        _pad: 0,
        body_crc32: sink.0.finalize(),
        header_crc32: 0,
        _reserved: [0; 4],
    };
    header.header_crc32 = Header::compute_crc(&header.to_bytes());
    let bytes = header.to_bytes();
    let written = quiver_storage::fs::atomic_write_with(path, |w| {
        w.write_all(&bytes)?;
        write_body(graph, w)
    })?;
    Ok(written)
}

fn write_body(graph: &GraphLayers, w: &mut dyn Write) -> std::io::Result<()> {
    let mut counts = vec![graph.len() as u64];
    counts.extend(graph.upper.iter().map(|l| l.nodes.len() as u64));
    let mut at = HEADER_LEN;
    for c in &counts {
        w.write_all(&c.to_le_bytes())?;
        at += 8;
    }
    w.write_all(&graph.levels)?;
    at += graph.levels.len();
    at = pad(w, at)?;
    at = write_u32s(w, &graph.layer0, at)?;
    for layer in &graph.upper {
        at = write_u32s(w, &layer.nodes, at)?;
        at = write_u32s(w, &layer.links, at)?;
    }
    debug_assert_eq!(
        Some(at),
        Layout::compute(
            graph.len(),
            graph.m as usize,
            graph.m0 as usize,
            &counts.iter().map(|&c| c as usize).collect::<Vec<_>>()
        )
        .map(|l| l.total)
    );
    Ok(())
}

/// Writes `values` little-endian and pads to 8 bytes; returns the new offset.
fn write_u32s(w: &mut dyn Write, values: &[u32], at: usize) -> std::io::Result<usize> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in values.chunks(16 * 1024) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    pad(w, at + values.len() * 4)
}

fn pad(w: &mut dyn Write, at: usize) -> std::io::Result<usize> {
    let padded = (at + 7) & !7;
    w.write_all(&[0u8; 8][..padded - at])?;
    Ok(padded)
}

struct CrcSink(crc32fast::Hasher);

impl Write for CrcSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
