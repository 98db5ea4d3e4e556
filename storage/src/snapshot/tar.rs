//! A minimal POSIX ustar writer and a strict reader. Snapshots only ever hold regular files with short
//! relative paths, so anything else an archive holds (links, devices, directories, pax or GNU extension
//! headers) is refused by the reader rather than interpreted.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;
/// Largest size the 11-digit octal field holds; larger sizes use the base-256 form (GNU and POSIX
/// readers accept both).
const OCTAL_MAX: u64 = (1 << 33) - 1;

/// What kind of entry a header announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (type `0` or NUL).
    File,
    /// A hard link (type `1`).
    HardLink,
    /// A symbolic link (type `2`).
    Symlink,
    /// Anything else, by its type byte.
    Other(u8),
}

/// One header read from an archive.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The path as stored (prefix and name joined).
    pub path: String,
    /// Bytes of data that follow.
    pub size: u64,
    /// The entry type.
    pub kind: EntryKind,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn write_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// Streams regular files into a ustar archive.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Appends a regular file of exactly `size` bytes read from `data`.
    pub fn append(&mut self, path: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        if path.is_empty() || path.len() > 100 || !path.is_ascii() {
            return Err(invalid(format!(
                "archive path {path:?} must be 1 to 100 ASCII bytes"
            )));
        }
        let mut h = [0u8; BLOCK];
        h[..path.len()].copy_from_slice(path.as_bytes());
        write_octal(&mut h[100..108], 0o644);
        write_octal(&mut h[108..116], 0);
        write_octal(&mut h[116..124], 0);
        if size <= OCTAL_MAX {
            write_octal(&mut h[124..136], size);
        } else {
            h[124] = 0x80;
            h[128..136].copy_from_slice(&size.to_be_bytes());
        }
        write_octal(&mut h[136..148], 0);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.out.write_all(&h)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(invalid(format!(
                "{path}: expected {size} bytes, the source had {copied}"
            )));
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    /// Writes the two zero blocks that end an archive and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

fn parse_octal(field: &[u8], what: &str) -> io::Result<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        if field[..field.len() - 8].iter().skip(1).any(|&b| b != 0) {
            return Err(invalid(format!("{what} field too large")));
        }
        let tail: [u8; 8] = field[field.len() - 8..].try_into().expect("8 bytes");
        return Ok(u64::from_be_bytes(tail));
    }
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    // After the terminator only NULs and spaces may follow; anything else is a damaged header byte
    // that the header checksum would not see (it is computed over the checksum field as spaces).
    if field[end..].iter().any(|&b| b != 0 && b != b' ') {
        return Err(invalid(format!("{what} field is not octal")));
    }
    let text: Vec<u8> = field[..end]
        .iter()
        .copied()
        .filter(|&b| b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    let s =
        std::str::from_utf8(&text).map_err(|_| invalid(format!("{what} field is not octal")))?;
    u64::from_str_radix(s, 8).map_err(|_| invalid(format!("{what} field {s:?} is not octal")))
}

fn c_string(field: &[u8]) -> io::Result<String> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8(field[..end].to_vec()).map_err(|_| invalid("entry path is not UTF-8"))
}

/// Reads entries one at a time; the caller reads each entry's data with [`TarReader::read_data`] before
/// asking for the next header.
pub struct TarReader<R: Read> {
    input: R,
    /// Data bytes (plus padding) of the current entry not yet consumed.
    pending: u64,
    pad: u64,
}

impl<R: Read> TarReader<R> {
    /// Reads an archive from `input`.
    pub fn new(input: R) -> Self {
        TarReader {
            input,
            pending: 0,
            pad: 0,
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                invalid("archive is truncated")
            } else {
                e
            }
        })
    }

    /// The next entry's header, or `None` at the end-of-archive marker.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.pending > 0 {
            let skip = self.pending;
            let n = io::copy(&mut (&mut self.input).take(skip), &mut io::sink())?;
            if n != skip {
                return Err(invalid("archive is truncated"));
            }
            self.pending = 0;
        }
        self.consume_padding()?;
        let mut h = [0u8; BLOCK];
        self.read_exact(&mut h)?;
        if h.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let stored = parse_octal(&h[148..156], "checksum")?;
        let mut copy = h;
        copy[148..156].fill(b' ');
        let sum: u64 = copy.iter().map(|&b| b as u64).sum();
        if sum != stored {
            return Err(invalid(format!(
                "entry header checksum {stored:o} does not match its content ({sum:o})"
            )));
        }
        let name = c_string(&h[..100])?;
        let prefix = if &h[257..262] == b"ustar" {
            c_string(&h[345..500])?
        } else {
            String::new()
        };
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = parse_octal(&h[124..136], "size")?;
        let kind = match h[156] {
            b'0' | 0 => EntryKind::File,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            other => EntryKind::Other(other),
        };
        self.pending = size;
        self.pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        Ok(Some(Entry { path, size, kind }))
    }

    /// Copies the current entry's data to `out`.
    pub fn read_data(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let want = self.pending;
        let n = io::copy(&mut (&mut self.input).take(want), out)?;
        if n != want {
            return Err(invalid("archive is truncated"));
        }
        self.pending = 0;
        self.consume_padding()
    }

    /// Reads the zero padding after an entry's data. Any other byte there is damage: a flip in the
    /// padding would otherwise pass unnoticed, since no checksum covers it.
    fn consume_padding(&mut self) -> io::Result<()> {
        if self.pad == 0 {
            return Ok(());
        }
        let mut pad = [0u8; BLOCK];
        let len = self.pad as usize;
        self.read_exact(&mut pad[..len])?;
        self.pad = 0;
        if pad[..len].iter().any(|&b| b != 0) {
            return Err(invalid("non-zero bytes in the padding after an entry"));
        }
        Ok(())
    }

    /// After [`TarReader::next_entry`] returned `None`: checks the second end-of-archive block is there
    /// and that nothing but zeros follows it.
    pub fn finish(mut self) -> io::Result<()> {
        let mut block = [0u8; BLOCK];
        self.read_exact(&mut block)?;
        let mut len = BLOCK;
        loop {
            if block[..len].iter().any(|&b| b != 0) {
                return Err(invalid("data after the end-of-archive marker"));
            }
            len = match self.input.read(&mut block) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(e),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_large_size_field() {
        let mut w = TarWriter::new(Vec::new());
        w.append("a/b.bin", 3, &mut &b"xyz"[..]).unwrap();
        w.append("empty", 0, &mut &b""[..]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        let mut r = TarReader::new(&bytes[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(
            (e.path.as_str(), e.size, e.kind),
            ("a/b.bin", 3, EntryKind::File)
        );
        let mut data = Vec::new();
        r.read_data(&mut data).unwrap();
        assert_eq!(data, b"xyz");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_str(), e.size), ("empty", 0));
        assert!(r.next_entry().unwrap().is_none());

        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[4..].copy_from_slice(&(10u64 << 33).to_be_bytes());
        assert_eq!(parse_octal(&field, "size").unwrap(), 10 << 33);
    }

    #[test]
    fn truncated_archive_is_an_error() {
        let mut w = TarWriter::new(Vec::new());
        w.append("f", 1000, &mut &[7u8; 1000][..]).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = TarReader::new(&bytes[..700]);
        r.next_entry().unwrap().unwrap();
        let err = r.read_data(&mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
