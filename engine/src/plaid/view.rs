//! A token store ready to search: a memory-mapped file (validated once on open) or an in-memory build.

use std::path::{Path, PathBuf};

use quiver_storage::segment::{Mapped, Pod};

use super::codec::{bytes_per_token, ResidualDecoder};
use super::originals::TokenOriginals;
use super::search::{self, check_query, IdsRef, Parts, Scratch};
use super::serialize::{Header, Layout, HEADER_LEN, MAGIC, VERSION};
use super::{out_of_range, Candidate, CentroidIds, PlaidBuild, PlaidSearchParams};
use crate::{Error, Result};

/// A searchable token store. `Send + Sync`; share it behind an `Arc`.
pub struct PlaidIndex {
    storage: Storage,
    decoder: ResidualDecoder,
    dim: usize,
    nbits: u32,
    originals: Option<TokenOriginals>,
}

enum Storage {
    Mapped {
        map: Mapped,
        layout: Layout,
        id_width: u32,
    },
    Owned(PlaidBuild),
}

impl std::fmt::Debug for PlaidIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaidIndex")
            .field("points", &self.num_points())
            .field("tokens", &self.num_tokens())
            .field("centroids", &self.num_centroids())
            .field("dim", &self.dim)
            .field("nbits", &self.nbits)
            .field("originals", &self.originals.is_some())
            .finish()
    }
}

/// `bytes[range]` as a slice of `T`; `None` when out of bounds or misaligned (a mapping is
/// page-aligned and sections are 64-byte aligned, so this does not happen for files this module wrote).
fn cast<T: Pod>(bytes: &[u8], range: (usize, usize)) -> Option<&[T]> {
    quiver_storage::segment::cast(bytes.get(range.0..range.1)?)
}

impl PlaidIndex {
    /// Maps and validates a store written by [`PlaidBuild::write`]: header (magic, version, counts),
    /// file size, the header's CRC-32 of the body, and structure (offsets monotone and in range, ids in
    /// range, floats finite), so that a damaged file is an error here and never a panic later. This reads
    /// the whole file once.
    pub fn open(path: &Path) -> Result<PlaidIndex> {
        let corrupt = |reason: String| -> Error {
            quiver_storage::Error::Corrupt {
                path: PathBuf::from(path),
                reason,
            }
            .into()
        };
        if cfg!(target_endian = "big") {
            return Err(corrupt(
                "token store files are little-endian; this host is big-endian".into(),
            ));
        }
        // Token-store files are written once through an atomic rename and never modified or
        // truncated afterwards (a rebuilt segment gets new files): `map_file`'s contract.
        let map = Mapped::open(path)?;
        let head: &[u8; HEADER_LEN] = map.header()?;
        let h = Header::from_bytes(head);
        check_header(&h).map_err(corrupt)?;
        let layout = Layout::new(&h).ok_or_else(|| corrupt("header counts overflow".into()))?;
        if layout.total != map.len() {
            return Err(corrupt(format!(
                "size is {} bytes, the header implies {}",
                map.len(),
                layout.total
            )));
        }
        map.check_crc(HEADER_LEN, h.body_crc32, "token store")?;
        let weights: &[f32] =
            cast(map.bytes(), layout.weights).ok_or_else(|| corrupt("misaligned".into()))?;
        let decoder = ResidualDecoder::new(h.dim as usize, h.nbits, weights);
        let index = PlaidIndex {
            decoder,
            dim: h.dim as usize,
            nbits: h.nbits,
            originals: None,
            storage: Storage::Mapped {
                map,
                layout,
                id_width: h.id_width,
            },
        };
        let parts = index
            .try_parts()
            .ok_or_else(|| corrupt("misaligned section".into()))?;
        check_structure(&parts, &index).map_err(corrupt)?;
        Ok(index)
    }

    /// Searches a build in memory, without a file (small segments, tests).
    pub fn from_build(build: PlaidBuild) -> PlaidIndex {
        PlaidIndex {
            decoder: ResidualDecoder::new(build.dim, build.nbits, &build.weights),
            dim: build.dim,
            nbits: build.nbits,
            originals: None,
            storage: Storage::Owned(build),
        }
    }

    /// Attaches the originals of this store's tokens ([`super::write_originals`] of the tokens it was
    /// built from): search then rescores its last candidates over them
    /// ([`PlaidSearchParams::rescore`]) and [`PlaidIndex::tokens`] returns them. An error when the
    /// file's dimension, point or token count differs from the store's.
    pub fn with_originals(mut self, originals: TokenOriginals) -> Result<PlaidIndex> {
        if originals.dim() != self.dim
            || originals.num_points() != self.num_points()
            || originals.num_tokens() != self.num_tokens()
        {
            return Err(Error::InvalidInput(format!(
                "token originals hold {} points, {} tokens of {} dims; the token store {} points, \
                 {} tokens of {} dims",
                originals.num_points(),
                originals.num_tokens(),
                originals.dim(),
                self.num_points(),
                self.num_tokens(),
                self.dim
            )));
        }
        self.originals = Some(originals);
        Ok(self)
    }

    /// Whether the store has its tokens' originals attached.
    pub fn has_originals(&self) -> bool {
        self.originals.is_some()
    }

    /// The tokens of point `offset` as well as the store has them: the f16 originals widened to f32
    /// when attached, else the decompressed tokens.
    pub fn tokens(&self, offset: u32) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.tokens_into(offset, &mut out)?;
        Ok(out)
    }

    /// [`PlaidIndex::tokens`] into `out` (replacing what it held), so that a caller scoring many
    /// points reuses one buffer.
    pub fn tokens_into(&self, offset: u32, out: &mut Vec<f32>) -> Result<()> {
        let parts = self.parts();
        if offset as usize >= parts.num_points() {
            return Err(out_of_range(offset, parts.num_points()));
        }
        match &self.originals {
            Some(o) => o.decode_into(
                parts.doc_offsets[offset as usize] as usize
                    ..parts.doc_offsets[offset as usize + 1] as usize,
                out,
            ),
            None => parts.decompress(offset, out),
        }
        Ok(())
    }

    /// The `k` best of `candidates` by exact MaxSim over the f16 originals, best first (ties by lower
    /// offset); as [`PlaidIndex::rerank`] otherwise. An error without originals.
    pub fn rescore(
        &self,
        query: &[f32],
        candidates: &[u32],
        k: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Result<Vec<Candidate>> {
        let Some(originals) = &self.originals else {
            return Err(Error::InvalidInput(
                "this token store has no originals to rescore with".into(),
            ));
        };
        let parts = self.candidate_parts(query, candidates)?;
        Ok(search::rerank_by(candidates, k, accept, &|doc, scratch| {
            parts.exact_original(originals, query, doc, scratch)
        }))
    }

    fn try_parts(&self) -> Option<Parts<'_>> {
        let bpt = bytes_per_token(self.dim, self.nbits);
        Some(match &self.storage {
            Storage::Owned(b) => Parts {
                dim: self.dim,
                centroids: &b.centroids,
                doc_offsets: &b.doc_offsets,
                ids: match &b.ids {
                    CentroidIds::U16(v) => IdsRef::U16(v),
                    CentroidIds::U32(v) => IdsRef::U32(v),
                },
                residuals: &b.residuals,
                bytes_per_token: bpt,
                ivf_offsets: &b.ivf_offsets,
                ivf_docs: &b.ivf_docs,
                decoder: &self.decoder,
                originals: self.originals.as_ref(),
            },
            Storage::Mapped {
                map,
                layout,
                id_width,
            } => Parts {
                dim: self.dim,
                centroids: cast(map.bytes(), layout.centroids)?,
                doc_offsets: cast(map.bytes(), layout.doc_offsets)?,
                ids: if *id_width == 2 {
                    IdsRef::U16(cast(map.bytes(), layout.ids)?)
                } else {
                    IdsRef::U32(cast(map.bytes(), layout.ids)?)
                },
                residuals: map.bytes().get(layout.residuals.0..layout.residuals.1)?,
                bytes_per_token: bpt,
                ivf_offsets: cast(map.bytes(), layout.ivf_offsets)?,
                ivf_docs: cast(map.bytes(), layout.ivf_docs)?,
                decoder: &self.decoder,
                originals: self.originals.as_ref(),
            },
        })
    }

    pub(crate) fn parts(&self) -> Parts<'_> {
        self.try_parts()
            .expect("sections were checked on open: this is a bug")
    }

    /// Number of points (offsets `0..num_points()`).
    pub fn num_points(&self) -> usize {
        self.parts().num_points()
    }

    /// Number of stored tokens.
    pub fn num_tokens(&self) -> usize {
        self.parts().ids.len()
    }

    /// Number of centroids.
    pub fn num_centroids(&self) -> usize {
        self.parts().num_centroids()
    }

    /// Floats per token.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bits per residual dimension.
    pub fn nbits(&self) -> u32 {
        self.nbits
    }

    /// Number of tokens of point `offset`, or `None` past the end.
    pub fn point_len(&self, offset: u32) -> Option<usize> {
        let offsets = self.parts().doc_offsets;
        let o = offset as usize;
        Some((offsets.get(o + 1)? - offsets[o]) as usize)
    }

    /// The decompressed tokens of point `offset` (`len × dim`, unit rows). Compression is lossy: this is
    /// what search scores, not the vectors that were inserted.
    pub fn decompress(&self, offset: u32) -> Result<Vec<f32>> {
        let parts = self.parts();
        if offset as usize >= parts.num_points() {
            return Err(out_of_range(offset, parts.num_points()));
        }
        let mut out = Vec::new();
        parts.decompress(offset, &mut out);
        Ok(out)
    }

    /// Exact MaxSim of `query` (`dim`-strided rows) against the decompressed point `offset`.
    pub fn max_sim(&self, query: &[f32], offset: u32) -> Result<f32> {
        check_query(query, self.dim)?;
        let parts = self.parts();
        if offset as usize >= parts.num_points() {
            return Err(out_of_range(offset, parts.num_points()));
        }
        Ok(parts.exact(query, offset, &mut Scratch::default()))
    }

    /// The `k` best of `candidates` by exact MaxSim over decompressed tokens, best first (ties by lower
    /// offset). Candidates `accept` rejects are skipped, duplicates are scored once, an offset past the
    /// end is an error.
    pub fn rerank(
        &self,
        query: &[f32],
        candidates: &[u32],
        k: usize,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Result<Vec<Candidate>> {
        let parts = self.candidate_parts(query, candidates)?;
        Ok(search::rerank_by(candidates, k, accept, &|doc, scratch| {
            parts.exact(query, doc, scratch)
        }))
    }

    /// The store's sections, once the query's width and every candidate offset are checked.
    fn candidate_parts(&self, query: &[f32], candidates: &[u32]) -> Result<Parts<'_>> {
        check_query(query, self.dim)?;
        let parts = self.parts();
        if let Some(&bad) = candidates
            .iter()
            .find(|&&c| c as usize >= parts.num_points())
        {
            return Err(out_of_range(bad, parts.num_points()));
        }
        Ok(parts)
    }

    /// PLAID late-interaction search: the (approximately) `k` best accepted points by MaxSim, best first,
    /// scored exactly: over the f16 originals when attached (and `params.rescore` is not 0), else over
    /// the decompressed tokens. Points without tokens are never found this way.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &PlaidSearchParams,
        accept: &(dyn Fn(u32) -> bool + Sync),
    ) -> Result<Vec<Candidate>> {
        check_query(query, self.dim)?;
        let resolved = params.resolve(k, self.has_originals())?;
        let _span = tracing::debug_span!("plaid_search", k).entered();
        Ok(search::plaid_search(
            &self.parts(),
            query,
            k,
            &resolved,
            accept,
        ))
    }
}

fn check_header(h: &Header) -> std::result::Result<(), String> {
    if h.magic != MAGIC {
        return Err("not a token store (bad magic)".into());
    }
    if h.version != VERSION {
        return Err(format!(
            "format version {} is not supported (expected {VERSION})",
            h.version
        ));
    }
    if h.header_len as usize != HEADER_LEN || h._pad0 != 0 || h._pad1 != 0 || h._reserved != [0; 7]
    {
        return Err("header length or padding is wrong".into());
    }
    if !matches!(h.nbits, 1 | 2 | 4) {
        return Err(format!("nbits {} is not 1, 2 or 4", h.nbits));
    }
    if h.dim == 0 || h.dim > 65_536 {
        return Err(format!("dim {} is out of range", h.dim));
    }
    let wide = h.num_centroids > 1 << 16;
    if h.id_width != if wide { 4 } else { 2 } {
        return Err(format!(
            "id width {} does not fit {} centroids",
            h.id_width, h.num_centroids
        ));
    }
    if h.num_points > u32::MAX as u64 {
        return Err(format!(
            "{} points is more than a segment can hold",
            h.num_points
        ));
    }
    if h.num_tokens > 0 && h.num_centroids == 0 {
        return Err("tokens without centroids".into());
    }
    Ok(())
}

fn check_structure(parts: &Parts<'_>, index: &PlaidIndex) -> std::result::Result<(), String> {
    let monotone = |v: &[u64], end: usize| {
        v.first() == Some(&0)
            && v.windows(2).all(|w| w[0] <= w[1])
            && v.last() == Some(&(end as u64))
    };
    if !monotone(parts.doc_offsets, parts.ids.len()) {
        return Err("point token offsets are not monotone or do not end at the token count".into());
    }
    if !monotone(parts.ivf_offsets, parts.ivf_docs.len()) {
        return Err(
            "inverted-list offsets are not monotone or do not end at the entry count".into(),
        );
    }
    if parts
        .ivf_docs
        .iter()
        .any(|&d| d as usize >= parts.num_points())
    {
        return Err("an inverted list names a point past the end".into());
    }
    if parts.ids.max().is_some_and(|m| m >= parts.num_centroids()) {
        return Err("a token names a centroid past the end".into());
    }
    let Storage::Mapped { map, layout, .. } = &index.storage else {
        return Ok(());
    };
    let floats = |r| cast::<f32>(map.bytes(), r).unwrap_or_default();
    let cutoffs = floats(layout.cutoffs);
    if parts
        .centroids
        .iter()
        .chain(cutoffs)
        .chain(floats(layout.weights))
        .any(|v| !v.is_finite())
    {
        return Err("non-finite centroid or bucket value".into());
    }
    if cutoffs.windows(2).any(|w| w[0] > w[1]) {
        return Err("bucket cutoffs are not ascending".into());
    }
    Ok(())
}
