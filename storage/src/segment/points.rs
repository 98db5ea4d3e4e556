//! The points file: ids (offset -> point id, strictly ascending, so lookups and id-ordered scrolls are
//! binary searches) and payloads as JSON bytes, archived with rkyv after the common header (field 0 point
//! count, field 1 archive length). Validated once on open, then read in place.

use std::cmp::Ordering;
use std::path::Path;

use super::mapped::Mapped;
use crate::fs::{atomic_write_with, WrittenFile};
use crate::{header, Error, PointId, Result};

const MAGIC: &[u8; 8] = b"QVPOINTS";
const VERSION: u32 = 1;
const H: usize = header::HEADER_LEN;

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
enum StoredId {
    Num(u64),
    Uuid([u8; 16]),
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct PointsArchive {
    ids: Vec<StoredId>,
    payloads: Vec<Vec<u8>>,
}

impl From<&PointId> for StoredId {
    fn from(id: &PointId) -> Self {
        match id {
            PointId::Num(n) => StoredId::Num(*n),
            PointId::Uuid(u) => StoredId::Uuid(*u.as_bytes()),
        }
    }
}

impl ArchivedStoredId {
    fn to_id(&self) -> PointId {
        match self {
            ArchivedStoredId::Num(n) => PointId::Num(n.to_native()),
            ArchivedStoredId::Uuid(b) => PointId::Uuid(uuid::Uuid::from_bytes(*b)),
        }
    }
}

/// Writes the points file. `ids` must be strictly ascending; `payloads` has one entry per id.
pub fn write_points(path: &Path, ids: &[PointId], payloads: &[Vec<u8>]) -> Result<WrittenFile> {
    if ids.len() != payloads.len() || !ids.windows(2).all(|w| w[0] < w[1]) {
        return Err(Error::Decode(format!(
            "{}: ids must be strictly ascending with one payload each",
            path.display()
        )));
    }
    let archive = PointsArchive {
        ids: ids.iter().map(StoredId::from).collect(),
        payloads: payloads.to_vec(),
    };
    let body = rkyv::to_bytes::<rkyv::rancor::Error>(&archive)
        .map_err(|e| Error::Decode(format!("{}: {e}", path.display())))?;
    let head = header::encode(
        MAGIC,
        VERSION,
        [ids.len() as u64, body.len() as u64, 0, 0, 0, 0],
    );
    atomic_write_with(path, |w| {
        w.write_all(&head)?;
        w.write_all(&body)
    })
}

/// The points file, memory-mapped and validated.
pub struct PointsFile {
    map: Mapped,
    len: usize,
}

impl PointsFile {
    /// Maps the file and validates the archive and the id order once.
    pub fn open(path: &Path) -> Result<Self> {
        let map = Mapped::open(path)?;
        let f = header::decode(path, map.bytes(), MAGIC, VERSION)?;
        if f[1] as usize != map.bytes().len() - H {
            return Err(map.corrupt("archive length differs from the header"));
        }
        let archived =
            rkyv::access::<ArchivedPointsArchive, rkyv::rancor::Error>(&map.bytes()[H..])
                .map_err(|e| map.corrupt(format!("invalid archive: {e}")))?;
        let len = archived.ids.len();
        if len != f[0] as usize || archived.payloads.len() != len {
            return Err(map.corrupt("point count differs from the header"));
        }
        let ascending = archived
            .ids
            .iter()
            .zip(archived.ids.iter().skip(1))
            .all(|(a, b)| a.to_id() < b.to_id());
        if !ascending {
            return Err(map.corrupt("ids are not strictly ascending"));
        }
        Ok(PointsFile { map, len })
    }

    fn archive(&self) -> &ArchivedPointsArchive {
        // SAFETY: the same bytes were validated by `rkyv::access` in `open`, and the file is immutable
        // while mapped.
        unsafe { rkyv::access_unchecked::<ArchivedPointsArchive>(&self.map.bytes()[H..]) }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the segment holds no points.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The id at `offset`.
    pub fn id(&self, offset: u32) -> PointId {
        self.archive().ids[offset as usize].to_id()
    }

    /// The JSON payload bytes at `offset`.
    pub fn payload(&self, offset: u32) -> &[u8] {
        self.archive().payloads[offset as usize].as_slice()
    }

    /// The offset of `id`, if stored.
    pub fn find(&self, id: &PointId) -> Option<u32> {
        let ids = &self.archive().ids;
        let (mut lo, mut hi) = (0usize, ids.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match ids[mid].to_id().cmp(id) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    /// The first offset whose id is `>= id`.
    pub fn lower_bound(&self, id: &PointId) -> u32 {
        let ids = &self.archive().ids;
        let (mut lo, mut hi) = (0usize, ids.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if ids[mid].to_id() < *id {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("points");
        let u = PointId::Uuid(uuid::Uuid::from_u128(7));
        let ids = [PointId::Num(1), PointId::Num(5), u];
        let payloads = vec![b"{}".to_vec(), br#"{"a":1}"#.to_vec(), b"{}".to_vec()];
        write_points(&p, &ids, &payloads).unwrap();
        let f = PointsFile::open(&p).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.id(2), u);
        assert_eq!(f.payload(1), br#"{"a":1}"#);
        assert_eq!(f.find(&PointId::Num(5)), Some(1));
        assert_eq!(f.find(&PointId::Num(4)), None);
        assert_eq!(f.lower_bound(&PointId::Num(2)), 1);
        assert_eq!(f.lower_bound(&PointId::Num(99)), 2);
        assert!(write_points(&p, &[PointId::Num(2), PointId::Num(1)], &payloads[..2]).is_err());
    }
}
