//! A field index as bytes: written once at seal or vacuum time (or when an index is created over sealed
//! segments) through the atomic write (temp file, fsync, rename, fsync dir), and read in place through
//! the mapped-file primitive. An index built in memory (a segment without the file) is the same bytes
//! in anonymous memory, so there is one reader.
//!
//! Layout after the 64-byte header (`points`, `keys`, `postings`, type and flags, body CRC-32,
//! `string bytes`; the flags' low byte is the type, their top 32 bits the length of the text params):
//!
//! ```text
//! u64 × ⌈points / 64⌉         offsets with a value of the indexed type (bit i of word i / 64)
//! u64 × keys                  number keys, ascending ([`super::build::SortKey`]); none for strings
//! u64 × (keys + 1)            string keys: key i is bytes [s[i], s[i + 1]), ascending; none for numbers
//! u64 × (keys + 1)            postings of key i are [p[i], p[i + 1])
//! u64 × postings              geo: each posting's longitude (f64 bits), its key being the latitude
//! u32 × postings              offsets, ascending within a key
//! u32 × postings              text (version 2): the place of the posting's string among the values
//! u32 × postings              text (version 2): the place of the word in that string
//! u32 × points                version 2: each offset's [`super::build::Shape`]
//! u8  × string bytes
//! u8  × params bytes          text (version 2): the index's params as JSON
//! ```
//!
//! Version 2 added the text postings (a text index of version 1 keys nothing: its text conditions are
//! left to the payloads) and the shapes (version 1 leaves `values_count`, `is_empty` and `is_null` to
//! the payloads). Version 3 has version 2's layout; it marks `multilingual` words cut by charabia,
//! where version 2 cut them as `word` does, so a version 2 `multilingual` index reads as one without
//! words. Older files still open and answer what they did.

use std::io::Write;
use std::path::Path;

use quiver_storage::fs::{atomic_write_with, WrittenFile};
use quiver_storage::header::{self, HEADER_LEN};
use quiver_storage::segment::{write_u32s, write_u64s, Mapped, Pod};

use super::build::{keyed_by_string, FieldIndexData, Keys};
use crate::payload_schema::{PayloadSchemaType, TextIndexParams, TokenizerType};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"QVFIELDX";
const VERSION: u32 = 3;
/// Versions this build reads.
const READS: [u32; 3] = [1, 2, VERSION];
/// Flag bit: every value a `range` tests is keyed.
const RANGE_EXACT: u64 = 1 << 8;
/// Flag bit (version 2): the shapes answer exactly (at most one value per offset).
const SHAPES_EXACT: u64 = 1 << 9;
/// Flag bit (version 2): a text index with words, their places and its params.
const TEXT_WORDS: u64 = 1 << 10;

/// Where each section starts.
#[derive(Clone, Copy, Debug)]
struct Layout {
    points: usize,
    keys: usize,
    postings: usize,
    string_bytes: usize,
    has_value: usize,
    numbers: usize,
    string_offsets: usize,
    post_offsets: usize,
    lons: usize,
    post_points: usize,
    /// Text: the place of each posting's string and of its word; 0 postings when absent.
    places: usize,
    words_at: usize,
    text_postings: usize,
    /// Version 2: one shape per offset.
    shapes: Option<usize>,
    strings: usize,
    params: usize,
    params_bytes: usize,
    end: usize,
}

/// What a file holds besides version 1's sections.
#[derive(Clone, Copy)]
struct Extras {
    version: u32,
    text_words: bool,
    params_bytes: usize,
}

impl Layout {
    fn new(
        kind: PayloadSchemaType,
        points: usize,
        keys: usize,
        postings: usize,
        string_bytes: usize,
        extras: Extras,
    ) -> Option<Layout> {
        let by_string = keyed_by_string(kind);
        let mut at = HEADER_LEN;
        let mut take = |count: usize, size: usize| -> Option<usize> {
            let start = at;
            at = at.checked_add(count.checked_mul(size)?)?;
            Some(start)
        };
        let has_value = take(points.div_ceil(64), 8)?;
        let numbers = take(if by_string { 0 } else { keys }, 8)?;
        let string_offsets = take(if by_string { keys.checked_add(1)? } else { 0 }, 8)?;
        let post_offsets = take(keys.checked_add(1)?, 8)?;
        let geo = kind == PayloadSchemaType::Geo;
        let lons = take(if geo { postings } else { 0 }, 8)?;
        let post_points = take(postings, 4)?;
        let text_postings = if extras.text_words { postings } else { 0 };
        let places = take(text_postings, 4)?;
        let words_at = take(text_postings, 4)?;
        let shapes = if extras.version >= 2 {
            Some(take(points, 4)?)
        } else {
            None
        };
        let strings = take(string_bytes, 1)?;
        let params = take(extras.params_bytes, 1)?;
        Some(Layout {
            points,
            keys,
            postings,
            string_bytes,
            has_value,
            numbers,
            string_offsets,
            post_offsets,
            lons,
            post_points,
            places,
            words_at,
            text_postings,
            shapes,
            strings,
            params,
            params_bytes: extras.params_bytes,
            end: at,
        })
    }
}

fn kind_code(kind: PayloadSchemaType) -> u64 {
    PayloadSchemaType::ALL
        .iter()
        .position(|&k| k == kind)
        .expect("every type is in ALL") as u64
}

/// The bytes of an index, header included.
pub(crate) fn serialize(data: &FieldIndexData) -> Vec<u8> {
    serialize_as(data, VERSION)
}

/// The bytes of an index as version 1 wrote them (no words, no shapes).
#[cfg(test)]
pub(crate) fn serialize_version_1(data: &FieldIndexData) -> Vec<u8> {
    serialize_as(data, 1)
}

/// The bytes of an index as version 2 wrote them (the layout of version 3).
#[cfg(test)]
pub(crate) fn serialize_version_2(data: &FieldIndexData) -> Vec<u8> {
    serialize_as(data, 2)
}

/// The bytes of an index in format `version` (1 leaves out what version 2 added).
fn serialize_as(data: &FieldIndexData, version: u32) -> Vec<u8> {
    let points = data.has_value.len();
    let mut numbers: Vec<u64> = Vec::new();
    let mut string_offsets: Vec<u64> = Vec::new();
    let mut strings: Vec<u8> = Vec::new();
    let mut post_offsets: Vec<u64> = vec![0];
    let mut post_points: Vec<u32> = Vec::new();
    let mut lons: Vec<u64> = Vec::new();
    let mut places: Vec<u32> = Vec::new();
    let mut words_at: Vec<u32> = Vec::new();
    let mut push_postings = |offsets: &[u32]| {
        post_points.extend_from_slice(offsets);
        post_offsets.push(post_points.len() as u64);
    };
    let keys = match &data.keys {
        Keys::Numbers(map) => {
            for (&k, offsets) in map {
                numbers.push(k);
                push_postings(offsets);
            }
            map.len()
        }
        Keys::Points(map) => {
            for (&lat, points) in map {
                numbers.push(lat);
                let offsets: Vec<u32> = points.iter().map(|&(off, _)| off).collect();
                lons.extend(points.iter().map(|&(_, lon)| lon.to_bits()));
                push_postings(&offsets);
            }
            map.len()
        }
        Keys::Strings(map) => {
            string_offsets.push(0);
            for (s, offsets) in map {
                strings.extend_from_slice(s.as_bytes());
                string_offsets.push(strings.len() as u64);
                push_postings(offsets);
            }
            map.len()
        }
        Keys::Words(map) => {
            string_offsets.push(0);
            // Version 1 text indexes keyed nothing.
            let map = if version >= 2 && data.text.is_some() {
                map.iter().collect()
            } else {
                Vec::new()
            };
            for (s, postings) in &map {
                strings.extend_from_slice(s.as_bytes());
                string_offsets.push(strings.len() as u64);
                let offsets: Vec<u32> = postings.iter().map(|p| p.0).collect();
                places.extend(postings.iter().map(|p| p.1));
                words_at.extend(postings.iter().map(|p| p.2));
                push_postings(&offsets);
            }
            map.len()
        }
    };
    let text_words = version >= 2 && data.text.is_some();
    let params: Vec<u8> = match &data.text {
        Some(t) if text_words => serde_json::to_vec(&t.params).expect("text params serialize"),
        _ => Vec::new(),
    };
    let shapes: &[u32] = if version >= 2 { &data.shapes } else { &[] };
    let mut body: Vec<u8> = Vec::new();
    let fill = |w: &mut dyn Write| -> std::io::Result<()> {
        write_u64s(w, data.has_value.words())?;
        write_u64s(w, &numbers)?;
        write_u64s(w, &string_offsets)?;
        write_u64s(w, &post_offsets)?;
        write_u64s(w, &lons)?;
        write_u32s(w, &post_points)?;
        write_u32s(w, &places)?;
        write_u32s(w, &words_at)?;
        write_u32s(w, shapes)?;
        w.write_all(&strings)?;
        w.write_all(&params)
    };
    fill(&mut body).expect("writing to a Vec does not fail");
    let mut flags = kind_code(data.kind) | if data.range_exact() { RANGE_EXACT } else { 0 };
    if version >= 2 {
        flags |= (params.len() as u64) << 32;
        if data.shapes_exact() {
            flags |= SHAPES_EXACT;
        }
        if text_words {
            flags |= TEXT_WORDS;
        }
    }
    let head = header::encode(
        MAGIC,
        version,
        [
            points as u64,
            keys as u64,
            post_points.len() as u64,
            flags,
            u64::from(crc32fast::hash(&body)),
            strings.len() as u64,
        ],
    );
    let mut out = head.to_vec();
    out.extend_from_slice(&body);
    out
}

/// Writes an index as a file (atomically, durably).
pub(crate) fn write(path: &Path, data: &FieldIndexData) -> Result<WrittenFile> {
    let bytes = serialize(data);
    Ok(atomic_write_with(path, |w: &mut dyn Write| {
        w.write_all(&bytes)
    })?)
}

/// A field index, read in place and checked once when opened.
pub(crate) struct IndexBytes {
    map: Mapped,
    layout: Layout,
    kind: PayloadSchemaType,
    range_exact: bool,
    shapes_exact: bool,
    /// Text: the params its words were made with (`None`: no words, as in version 1).
    text_params: Option<TextIndexParams>,
}

impl IndexBytes {
    /// Opens an index file, expecting it to index `points` offsets as `kind`.
    pub fn open(path: &Path, kind: PayloadSchemaType, points: usize) -> Result<Self> {
        // Written once through `atomic_write_with` and never modified afterwards.
        Self::check(Mapped::open(path)?, kind, points)
    }

    /// An index built in memory, read through the same checks.
    pub fn in_memory(data: &FieldIndexData) -> Result<Self> {
        let label = Path::new("<payload index in memory>");
        let points = data.has_value.len();
        Self::check(
            Mapped::from_bytes(label, &serialize(data))?,
            data.kind,
            points,
        )
    }

    fn check(map: Mapped, kind: PayloadSchemaType, points: usize) -> Result<Self> {
        let path = map.path().to_path_buf();
        let corrupt = |reason: String| {
            Error::Storage(quiver_storage::Error::Corrupt {
                path: path.clone(),
                reason,
            })
        };
        let (version, fields) =
            header::decode_versions(map.path(), map.bytes(), MAGIC, &READS, VERSION)?;
        let [n, keys, postings, flags, crc, string_bytes] = fields.map(|f| f as usize);
        let flags = flags as u64;
        let extras = Extras {
            version,
            text_words: version >= 2 && flags & TEXT_WORDS != 0,
            params_bytes: if version >= 2 {
                (flags >> 32) as usize
            } else {
                0
            },
        };
        if flags & 0xff != kind_code(kind)
            || n != points
            || (extras.text_words && kind != PayloadSchemaType::Text)
        {
            return Err(corrupt(format!(
                "a payload index of {n} points, type code {}; expected {points} points as {kind}",
                flags & 0xff
            )));
        }
        let layout = Layout::new(kind, points, keys, postings, string_bytes, extras)
            .filter(|l| l.end == map.len())
            .ok_or_else(|| corrupt(format!("payload index is {} bytes long", map.len())))?;
        map.check_crc(HEADER_LEN, crc as u32, "payload index")?;
        let text_params = if extras.text_words {
            let bytes = map
                .section::<u8>(layout.params, layout.params_bytes)
                .map_err(Error::from)?;
            let params = serde_json::from_slice::<TextIndexParams>(bytes)
                .map_err(|e| corrupt(format!("payload index text params: {e}")))?;
            // Its words were cut by another tokenizer than the one the params now name.
            let stale = version < 3 && params.tokenizer == Some(TokenizerType::Multilingual);
            (!stale).then_some(params)
        } else {
            None
        };
        let index = IndexBytes {
            layout,
            kind,
            range_exact: flags & RANGE_EXACT != 0,
            shapes_exact: version >= 2 && flags & SHAPES_EXACT != 0,
            text_params,
            map,
        };
        let ascending = |offs: &[u64], last: usize| {
            offs.first() == Some(&0)
                && offs.last() == Some(&(last as u64))
                && offs.windows(2).all(|w| w[0] <= w[1])
        };
        let l = index.layout;
        let post_offsets = index.section::<u64>(l.post_offsets, keys + 1)?;
        if !ascending(post_offsets, postings) {
            return Err(corrupt("payload index posting offsets out of order".into()));
        }
        if index
            .section::<u32>(l.post_points, postings)?
            .iter()
            .any(|&p| p as usize >= points)
        {
            return Err(corrupt(
                "a payload index posting is past the segment".into(),
            ));
        }
        index.section::<u64>(l.has_value, points.div_ceil(64))?;
        if kind == PayloadSchemaType::Geo {
            index.section::<u64>(l.lons, postings)?;
        }
        index.section::<u32>(l.places, l.text_postings)?;
        index.section::<u32>(l.words_at, l.text_postings)?;
        if let Some(at) = l.shapes {
            index.section::<u32>(at, points)?;
        }
        if keyed_by_string(kind) {
            let offs = index.section::<u64>(l.string_offsets, keys + 1)?;
            if !ascending(offs, string_bytes) {
                return Err(corrupt("payload index key offsets out of order".into()));
            }
            for i in 0..keys {
                std::str::from_utf8(index.string_bytes(offs, i))
                    .map_err(|_| corrupt(format!("payload index key {i} is not UTF-8")))?;
            }
        } else {
            let numbers = index.section::<u64>(l.numbers, keys)?;
            if !numbers.windows(2).all(|w| w[0] < w[1]) {
                return Err(corrupt("payload index keys out of order".into()));
            }
        }
        Ok(index)
    }

    fn section<T: Pod>(&self, at: usize, count: usize) -> Result<&[T]> {
        Ok(self.map.section::<T>(at, count)?)
    }

    // Every section was checked at open, so these reads cannot fail.
    fn checked<T: Pod>(&self, at: usize, count: usize) -> &[T] {
        self.map
            .section::<T>(at, count)
            .expect("sections are checked at open: this is a bug")
    }

    fn string_bytes<'a>(&'a self, offs: &[u64], i: usize) -> &'a [u8] {
        let strings = self.checked::<u8>(self.layout.strings, self.layout.string_bytes);
        &strings[offs[i] as usize..offs[i + 1] as usize]
    }

    pub fn kind(&self) -> PayloadSchemaType {
        self.kind
    }

    pub fn points(&self) -> usize {
        self.layout.points
    }

    pub fn range_exact(&self) -> bool {
        self.range_exact
    }

    /// Each offset's [`super::build::Shape`], when they answer exactly (version 2, at most one value
    /// per offset).
    pub fn shapes(&self) -> Option<&[u32]> {
        let at = self.layout.shapes.filter(|_| self.shapes_exact)?;
        Some(self.checked(at, self.layout.points))
    }

    /// Text: the params its words were made with; `None` when it holds no words (version 1, or
    /// params that did not parse when it was built).
    pub fn text_params(&self) -> Option<&TextIndexParams> {
        self.text_params.as_ref()
    }

    /// The posting indexes of keys `from..to` (into [`IndexBytes::places`] and the offsets).
    pub fn posting_span(&self, from: usize, to: usize) -> std::ops::Range<usize> {
        let offs = self.checked::<u64>(self.layout.post_offsets, self.layout.keys + 1);
        offs[from] as usize..offs[to] as usize
    }

    /// Text: every posting's offset, string place and word place (empty without words).
    pub fn text_postings(&self) -> (&[u32], &[u32], &[u32]) {
        let n = self.layout.text_postings;
        (
            self.checked(self.layout.post_points, n),
            self.checked(self.layout.places, n),
            self.checked(self.layout.words_at, n),
        )
    }

    /// The first string key not below `s` (`key_count` when there is none).
    pub fn lower_bound(&self, s: &str) -> usize {
        self.partition(|k| k < s)
    }

    /// The first key for which `below` is false, `below` holding for a prefix of the keys.
    pub fn partition(&self, below: impl Fn(&str) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.layout.keys);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if below(self.string(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The words of the has-value bitmap.
    pub fn has_value(&self) -> &[u64] {
        self.checked(self.layout.has_value, self.layout.points.div_ceil(64))
    }

    pub fn key_count(&self) -> usize {
        self.layout.keys
    }

    /// Number keys, ascending (empty for a string index).
    pub fn numbers(&self) -> &[u64] {
        let n = if keyed_by_string(self.kind) {
            0
        } else {
            self.layout.keys
        };
        self.checked(self.layout.numbers, n)
    }

    /// Geo: the longitude of each posting (its key is the latitude).
    pub fn longitudes(&self) -> impl Iterator<Item = f64> + '_ {
        let n = if self.kind == PayloadSchemaType::Geo {
            self.layout.postings
        } else {
            0
        };
        self.checked::<u64>(self.layout.lons, n)
            .iter()
            .map(|&bits| f64::from_bits(bits))
    }

    /// String key `i`.
    pub fn string(&self, i: usize) -> &str {
        let offs = self.checked::<u64>(self.layout.string_offsets, self.layout.keys + 1);
        std::str::from_utf8(self.string_bytes(offs, i)).expect("checked at open: this is a bug")
    }

    /// The key holding string `s`.
    pub fn find_string(&self, s: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.layout.keys);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.string(mid).cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The offsets holding keys `from..to`.
    pub fn postings(&self, from: usize, to: usize) -> &[u32] {
        let offs = self.checked::<u64>(self.layout.post_offsets, self.layout.keys + 1);
        let points = self.checked::<u32>(self.layout.post_points, self.layout.postings);
        &points[offs[from] as usize..offs[to] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_index_reopens_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = FieldIndexData::new(PayloadSchemaType::Keyword, 3, None);
        for (off, v) in [json!({"k": "b"}), json!({"k": ["a", "b"]}), json!({"k": 1})]
            .iter()
            .enumerate()
        {
            data.add(off as u32, v.as_object().unwrap(), "k");
        }
        let path = dir.path().join("f.pidx");
        write(&path, &data).unwrap();
        let index = IndexBytes::open(&path, PayloadSchemaType::Keyword, 3).unwrap();
        assert_eq!(index.key_count(), 2);
        assert_eq!(
            index.find_string("b").map(|i| index.postings(i, i + 1)),
            Some(&[0, 1][..])
        );
        assert_eq!(index.find_string("c"), None);
        assert_eq!(index.has_value(), &[0b011]);
        // Built in memory (a segment without the file), it reads the same.
        let memory = IndexBytes::in_memory(&data).unwrap();
        assert_eq!(memory.find_string("b"), index.find_string("b"));
        assert_eq!(memory.postings(0, 2), index.postings(0, 2));
        assert_eq!(memory.has_value(), index.has_value());
        assert!(IndexBytes::open(&path, PayloadSchemaType::Integer, 3).is_err());
        assert!(IndexBytes::open(&path, PayloadSchemaType::Keyword, 4).is_err());
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = IndexBytes::open(&path, PayloadSchemaType::Keyword, 3)
            .err()
            .unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
