//! The fixed 64-byte header every Quiver file starts with: magic, format version, header length and six
//! little-endian `u64` fields whose meaning depends on the file kind. 64 bytes keep whatever follows
//! aligned for `f32`/`u64` arrays and for rkyv (16) when the file is memory-mapped at a page boundary.

use std::path::Path;

use crate::{Error, Result};

/// Length of every header in bytes.
pub const HEADER_LEN: usize = 64;

/// Number of kind-specific fields.
pub const HEADER_FIELDS: usize = 6;

/// Encodes a header.
pub fn encode(magic: &[u8; 8], version: u32, fields: [u64; HEADER_FIELDS]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(magic);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    for (i, f) in fields.iter().enumerate() {
        let at = 16 + i * 8;
        out[at..at + 8].copy_from_slice(&f.to_le_bytes());
    }
    out
}

/// [`decode`] for a format this build reads in several versions (`reads`): returns the version found
/// with the fields. A version outside `reads` is checked against `current`, so its error names the
/// version this build writes.
pub fn decode_versions(
    path: &Path,
    bytes: &[u8],
    magic: &[u8; 8],
    reads: &[u32],
    current: u32,
) -> Result<(u32, [u64; HEADER_FIELDS])> {
    let version = bytes
        .get(8..12)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .filter(|v| reads.contains(v))
        .unwrap_or(current);
    Ok((version, decode(path, bytes, magic, version)?))
}

/// Checks magic, version and length of a header at the start of `bytes` and returns its fields.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    magic: &[u8; 8],
    version: u32,
) -> Result<[u64; HEADER_FIELDS]> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than its {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if &bytes[..8] != magic {
        return Err(corrupt(format!(
            "bad magic {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes[..8]),
            String::from_utf8_lossy(magic)
        )));
    }
    let got_version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if got_version != version {
        return Err(corrupt(format!(
            "format version {got_version}, this build reads version {version}"
        )));
    }
    let len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if len as usize != HEADER_LEN {
        return Err(corrupt(format!(
            "header length {len}, expected {HEADER_LEN}"
        )));
    }
    let mut fields = [0u64; HEADER_FIELDS];
    for (i, f) in fields.iter_mut().enumerate() {
        let at = 16 + i * 8;
        *f = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let h = encode(b"QVTEST\0\0", 3, [1, 2, 3, 4, 5, 6]);
        let p = Path::new("x");
        assert_eq!(decode(p, &h, b"QVTEST\0\0", 3).unwrap(), [1, 2, 3, 4, 5, 6]);
        assert!(decode(p, &h, b"QVOTHER\0", 3).is_err());
        assert!(decode(p, &h, b"QVTEST\0\0", 4).is_err());
        assert!(decode(p, &h[..10], b"QVTEST\0\0", 3).is_err());
    }
}
