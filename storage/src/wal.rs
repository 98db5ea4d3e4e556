//! Write-ahead log of opaque byte records.
//!
//! The log is a directory of chunk files `wal-<first seq>.log`. Each chunk starts with the common
//! 64-byte header (field 0 is the sequence number of its first record); records follow back to back:
//!
//! ```text
//! len: u32 | crc32: u32 | seq: u64 | len bytes
//! ```
//!
//! The CRC covers `len`, `seq` and the bytes. Sequence numbers start at 1 and increase by one inside a
//! chunk. A record is durable once [`Wal::sync_to`] (or [`Wal::append`]) returns; concurrent writers share
//! fsyncs (group commit): whoever syncs first covers every record written before it read the position.
//!
//! On open, a torn or corrupt tail of the last chunk (a crash mid-write, or a flipped byte in the last
//! records) is truncated with a warning. Damage in an earlier chunk is an error: those chunks were fsynced
//! before the next one was started, so damage there is not a torn write and must not be papered over.
//!
//! Trimming drops whole chunks whose records are all folded into sealed segments; the active chunk is
//! rotated first when it holds only folded records. The one chunk that holds both folded and unfolded
//! records (a seal freezes at one record while writers go on) has its unfolded tail copied into a new
//! chunk named after the tail's first record (temp file, fsync, rename, fsync the directory) and is then
//! removed, so after a trim the log holds little more than what the sealed segments do not. A crash
//! between the rename and the removal leaves two chunks whose ranges overlap; on open, a chunk followed
//! by one that starts at or below the caller's first unfolded record holds nothing needed (its records
//! are folded or repeated in the next chunk) and is removed unread. The log is never memory-mapped, so
//! truncating the tail in place on open is safe.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{fs as qfs, header, Error, Result};

const MAGIC: &[u8; 8] = b"QVWAL\0\0\0";
const VERSION: u32 = 1;
const RECORD_HEADER: usize = 16;
/// Largest record accepted (the length field is 32 bits; anything near it is a caller bug).
pub const MAX_RECORD: usize = 1 << 30;

/// WAL tuning.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// A chunk that reaches this size is closed and a new one started.
    pub chunk_size: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            chunk_size: 64 << 20,
        }
    }
}

struct Chunk {
    first_seq: u64,
    path: PathBuf,
    size: u64,
}

struct State {
    /// Closed chunks, oldest first; all fsynced.
    closed: Vec<Chunk>,
    /// The chunk being appended to.
    active: Chunk,
    file: Arc<File>,
    /// Next sequence number to hand out.
    next_seq: u64,
}

/// A write-ahead log. All methods take `&self`; appends from many threads are ordered by sequence number.
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    state: Mutex<State>,
    /// Serialises fsyncs; threads queue here and find their record already durable.
    sync_lock: Mutex<()>,
    /// Highest sequence number known durable.
    durable: AtomicU64,
    /// Total bytes of all chunks.
    size: AtomicU64,
    /// Set after a failed write or fsync: the file state is unknown, so every later append fails.
    failed: AtomicBool,
}

fn chunk_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("wal-{first_seq:020}.log"))
}

fn parse_chunk_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn encode_record(seq: u64, bytes: &[u8]) -> Vec<u8> {
    let len = bytes.len() as u32;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&seq.to_le_bytes());
    hasher.update(bytes);
    let mut out = Vec::with_capacity(RECORD_HEADER + bytes.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Why scanning a chunk stopped before its end.
enum Damage {
    None,
    At { offset: u64, reason: String },
}

/// Reads every valid record of a chunk, calling `visit` for each; returns where valid data ends.
fn scan_chunk(
    path: &Path,
    first_seq: u64,
    visit: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(u64, u64, Damage)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = [0u8; header::HEADER_LEN];
    file.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
    let fields = header::decode(path, &head, MAGIC, VERSION)?;
    if fields[0] != first_seq {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "header says first record {}, file name says {first_seq}",
                fields[0]
            ),
        });
    }
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut offset = header::HEADER_LEN as u64;
    let mut seq = first_seq;
    let mut buf = Vec::new();
    loop {
        let remaining = file_len - offset;
        if remaining == 0 {
            return Ok((offset, seq, Damage::None));
        }
        let damage = |reason: String| Damage::At { offset, reason };
        if remaining < RECORD_HEADER as u64 {
            return Ok((offset, seq, damage(format!("{remaining} stray bytes"))));
        }
        let mut rh = [0u8; RECORD_HEADER];
        reader.read_exact(&mut rh).map_err(|e| Error::io(path, e))?;
        let len = u32::from_le_bytes(rh[0..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(rh[4..8].try_into().expect("4 bytes"));
        let rec_seq = u64::from_le_bytes(rh[8..16].try_into().expect("8 bytes"));
        if len > remaining - RECORD_HEADER as u64 {
            return Ok((
                offset,
                seq,
                damage(format!("record of {len} bytes runs past the end")),
            ));
        }
        buf.resize(len as usize, 0);
        reader
            .read_exact(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&rh[0..4]);
        hasher.update(&rh[8..16]);
        hasher.update(&buf);
        if hasher.finalize() != crc {
            return Ok((
                offset,
                seq,
                damage(format!("checksum mismatch in record {rec_seq}")),
            ));
        }
        if rec_seq != seq {
            return Ok((
                offset,
                seq,
                damage(format!("record {rec_seq} where {seq} was expected")),
            ));
        }
        visit(seq, &buf)?;
        seq += 1;
        offset += RECORD_HEADER as u64 + len;
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir`, calling `visit` with every valid record in order, and
    /// truncates a damaged tail. `min_next_seq` is the smallest sequence number the next append may get
    /// (one past what the caller already folded), so numbering never goes backwards even when every chunk
    /// was trimmed or lost.
    pub fn open(
        dir: &Path,
        options: WalOptions,
        min_next_seq: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<Wal> {
        qfs::create_dir_durable(dir)?;
        qfs::remove_temp_files(dir)?;
        let mut firsts = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if let Some(first) = entry.file_name().to_str().and_then(parse_chunk_name) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        // A chunk whose successor starts at or below `min_next_seq` holds only folded records, or folded
        // ones and a tail that a trim copied into that successor: nothing in it is needed.
        let mut superseded = 0;
        while superseded + 1 < firsts.len() && firsts[superseded + 1] <= min_next_seq {
            superseded += 1;
        }
        if superseded > 0 {
            for &first in &firsts[..superseded] {
                let path = chunk_path(dir, first);
                tracing::info!(file = %path.display(), "removing a WAL chunk whose records are all folded");
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
            qfs::sync_dir(dir)?;
            firsts.drain(..superseded);
        }
        let mut chunks: Vec<Chunk> = Vec::new();
        // Sequence number after the last valid record of the last chunk scanned.
        let mut prev_end: Option<u64> = None;
        for (i, &first) in firsts.iter().enumerate() {
            let path = chunk_path(dir, first);
            let is_last = i + 1 == firsts.len();
            if let (Some(end), Some(prev)) = (prev_end, chunks.last()) {
                if first < end {
                    return Err(Error::Corrupt {
                        path,
                        reason: format!(
                            "chunk starts at record {first}, but {} already ends at {}",
                            prev.path.display(),
                            end - 1
                        ),
                    });
                }
            }
            let (end, after, damage) = scan_chunk(&path, first, &mut visit)?;
            if let Damage::At { offset, reason } = damage {
                if !is_last {
                    return Err(Error::Corrupt {
                        path,
                        reason: format!("{reason} at byte {offset} of a closed chunk"),
                    });
                }
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    "WAL tail damaged ({reason}); truncating the torn record and anything after it"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| Error::io(&path, e))?;
                f.set_len(end).map_err(|e| Error::io(&path, e))?;
                f.sync_all().map_err(|e| Error::io(&path, e))?;
            }
            prev_end = Some(after);
            chunks.push(Chunk {
                first_seq: first,
                path,
                size: end,
            });
        }
        let next_seq = prev_end.unwrap_or(1).max(min_next_seq).max(1);
        // Append to the last chunk only when its numbering continues at `next_seq`; otherwise (no chunk,
        // or the caller folded past it) start a fresh one.
        let active = if prev_end == Some(next_seq) {
            chunks.pop().expect("prev_end implies a chunk")
        } else {
            Chunk {
                first_seq: next_seq,
                path: create_chunk(dir, next_seq)?,
                size: header::HEADER_LEN as u64,
            }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .open(&active.path)
            .map_err(|e| Error::io(&active.path, e))?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| Error::io(&active.path, e))?;
        let size = chunks.iter().map(|c| c.size).sum::<u64>() + active.size;
        Ok(Wal {
            dir: dir.to_path_buf(),
            options,
            state: Mutex::new(State {
                closed: chunks,
                active,
                file: Arc::new(file),
                next_seq,
            }),
            sync_lock: Mutex::new(()),
            durable: AtomicU64::new(next_seq - 1),
            size: AtomicU64::new(size),
            failed: AtomicBool::new(false),
        })
    }

    /// Appends a record and returns its sequence number once it is durable.
    pub fn append(&self, bytes: &[u8]) -> Result<u64> {
        let seq = self.write(bytes)?;
        self.sync_to(seq)?;
        Ok(seq)
    }

    /// Writes a record without waiting for it to be durable; follow with [`Wal::sync_to`] before
    /// acknowledging it. Lets a caller keep its own lock short while still sharing fsyncs.
    pub fn write(&self, bytes: &[u8]) -> Result<u64> {
        if bytes.len() > MAX_RECORD {
            return Err(Error::Decode(format!(
                "WAL record of {} bytes exceeds the {MAX_RECORD}-byte limit",
                bytes.len()
            )));
        }
        let mut st = self.state.lock();
        self.check_failed()?;
        let seq = st.next_seq;
        let rec = encode_record(seq, bytes);
        if let Err(e) = (&*st.file).write_all(&rec) {
            self.failed.store(true, Ordering::SeqCst);
            return Err(Error::io(&st.active.path, e));
        }
        st.next_seq += 1;
        st.active.size += rec.len() as u64;
        self.size.fetch_add(rec.len() as u64, Ordering::Relaxed);
        if st.active.size >= self.options.chunk_size {
            self.rotate(&mut st)?;
        }
        Ok(seq)
    }

    /// Returns once every record up to `seq` is durable. One fsync serves every thread waiting here.
    pub fn sync_to(&self, seq: u64) -> Result<()> {
        if self.durable.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _leader = self.sync_lock.lock();
        if self.durable.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let (file, path, target) = {
            let st = self.state.lock();
            self.check_failed()?;
            (st.file.clone(), st.active.path.clone(), st.next_seq - 1)
        };
        if let Err(e) = file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages: nothing written since the
            // last good sync can be trusted, so refuse further writes.
            self.failed.store(true, Ordering::SeqCst);
            return Err(Error::io(path, e));
        }
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// Makes every record written so far durable.
    pub fn sync(&self) -> Result<()> {
        let last = self.state.lock().next_seq - 1;
        self.sync_to(last)
    }

    /// Drops every chunk whose records all have sequence numbers `<= up_to`. Call only once those
    /// records are folded into durable sealed segments.
    ///
    /// The chunk holding both record `up_to` and later ones is replaced by a copy of its later records,
    /// so the log keeps only what is not folded (plus the headers of its chunks).
    pub fn trim(&self, up_to: u64) -> Result<()> {
        let mut st = self.state.lock();
        self.check_failed()?;
        let last = st.next_seq - 1;
        if last <= up_to && st.next_seq > st.active.first_seq {
            self.rotate(&mut st)?;
        } else if st.active.first_seq <= up_to && up_to < last {
            self.cut_active(&mut st, up_to)?;
        } else if let Some(i) = st.closed.iter().enumerate().position(|(i, c)| {
            let end = st
                .closed
                .get(i + 1)
                .map_or(st.active.first_seq, |n| n.first_seq);
            c.first_seq <= up_to && up_to + 1 < end
        }) {
            let old = &st.closed[i];
            let (path, size) = copy_tail(&self.dir, &old.path, old.first_seq, up_to)?;
            let old_path = old.path.clone();
            let old_size = old.size;
            st.closed[i] = Chunk {
                first_seq: up_to + 1,
                path,
                size,
            };
            self.size.fetch_add(size, Ordering::Relaxed);
            self.size.fetch_sub(old_size, Ordering::Relaxed);
            fs::remove_file(&old_path).map_err(|e| Error::io(&old_path, e))?;
            qfs::sync_dir(&self.dir)?;
        }
        let mut keep = Vec::new();
        let closed = std::mem::take(&mut st.closed);
        let mut removed = false;
        for (i, chunk) in closed.iter().enumerate() {
            let end = closed
                .get(i + 1)
                .map(|c| c.first_seq)
                .unwrap_or(st.active.first_seq);
            if end.saturating_sub(1) <= up_to {
                fs::remove_file(&chunk.path).map_err(|e| Error::io(&chunk.path, e))?;
                self.size.fetch_sub(chunk.size, Ordering::Relaxed);
                removed = true;
            } else {
                keep.push(Chunk {
                    first_seq: chunk.first_seq,
                    path: chunk.path.clone(),
                    size: chunk.size,
                });
            }
        }
        st.closed = keep;
        if removed {
            qfs::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Calls `visit` with every record numbered `from..=to`, in order, while appends go on (snapshots).
    /// Every record up to `to` must already be written; records past it are ignored. Fails if one of the
    /// asked records is missing (trimmed concurrently: callers hold off trims while reading).
    pub fn read_records(
        &self,
        from: u64,
        to: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if from > to {
            return Ok(());
        }
        let chunks: Vec<(u64, PathBuf)> = {
            let st = self.state.lock();
            st.closed
                .iter()
                .chain(std::iter::once(&st.active))
                .map(|c| (c.first_seq, c.path.clone()))
                .collect()
        };
        let mut next = from;
        for (i, (first, path)) in chunks.iter().enumerate() {
            let end = chunks.get(i + 1).map_or(u64::MAX, |c| c.0);
            if end <= from || *first > to {
                continue;
            }
            scan_chunk(path, *first, &mut |seq, bytes| {
                if seq == next && seq <= to {
                    visit(seq, bytes)?;
                    next += 1;
                }
                Ok(())
            })?;
        }
        if next != to + 1 {
            return Err(Error::Corrupt {
                path: self.dir.clone(),
                reason: format!("records {next}..={to} are not in the log"),
            });
        }
        Ok(())
    }

    /// Bytes of all chunk files.
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Sequence number of the last record written (0 when none ever was).
    pub fn last_seq(&self) -> u64 {
        self.state.lock().next_seq - 1
    }

    fn check_failed(&self) -> Result<()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(Error::io(
                &self.dir,
                std::io::Error::other(
                    "an earlier WAL write or fsync failed; reopen the collection",
                ),
            ));
        }
        Ok(())
    }

    /// Replaces the active chunk by a copy of its records after `up_to` (its first record is at or
    /// below `up_to`, its last after it). The copy is fsynced before it takes the old chunk's place, so
    /// every record written so far is durable once this returns.
    fn cut_active(&self, st: &mut State, up_to: u64) -> Result<()> {
        let (path, size) = copy_tail(&self.dir, &st.active.path, st.active.first_seq, up_to)?;
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| Error::io(&path, e))?;
        self.durable.fetch_max(st.next_seq - 1, Ordering::AcqRel);
        let old = std::mem::replace(
            &mut st.active,
            Chunk {
                first_seq: up_to + 1,
                path,
                size,
            },
        );
        st.file = Arc::new(file);
        self.size.fetch_add(size, Ordering::Relaxed);
        self.size.fetch_sub(old.size, Ordering::Relaxed);
        fs::remove_file(&old.path).map_err(|e| Error::io(&old.path, e))?;
        qfs::sync_dir(&self.dir)
    }

    /// Closes the active chunk (fsynced, so everything in it is durable) and starts the next one.
    fn rotate(&self, st: &mut State) -> Result<()> {
        if let Err(e) = st.file.sync_data() {
            self.failed.store(true, Ordering::SeqCst);
            return Err(Error::io(&st.active.path, e));
        }
        self.durable.fetch_max(st.next_seq - 1, Ordering::AcqRel);
        let path = create_chunk(&self.dir, st.next_seq)?;
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut file = file;
        file.seek(SeekFrom::End(0))
            .map_err(|e| Error::io(&path, e))?;
        let old = std::mem::replace(
            &mut st.active,
            Chunk {
                first_seq: st.next_seq,
                path,
                size: header::HEADER_LEN as u64,
            },
        );
        self.size
            .fetch_add(header::HEADER_LEN as u64, Ordering::Relaxed);
        st.closed.push(old);
        st.file = Arc::new(file);
        Ok(())
    }
}

/// Writes the records after `up_to` of the chunk at `path` (which starts at `first_seq`) as a new chunk
/// starting at `up_to + 1`, atomically and durably. Returns the new chunk's path and size.
fn copy_tail(dir: &Path, path: &Path, first_seq: u64, up_to: u64) -> Result<(PathBuf, u64)> {
    let mut tail = header::encode(MAGIC, VERSION, [up_to + 1, 0, 0, 0, 0, 0]).to_vec();
    let (_, after, damage) = scan_chunk(path, first_seq, &mut |seq, bytes| {
        if seq > up_to {
            tail.extend_from_slice(&encode_record(seq, bytes));
        }
        Ok(())
    })?;
    if let Damage::At { offset, reason } = damage {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{reason} at byte {offset} of a chunk being trimmed"),
        });
    }
    if after <= up_to + 1 {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("trimming after record {up_to}, but the chunk ends before it"),
        });
    }
    let new = chunk_path(dir, up_to + 1);
    qfs::atomic_write(&new, &tail)?;
    Ok((new, tail.len() as u64))
}

/// Creates an empty chunk (header only) atomically, so a chunk file never has a torn header.
fn create_chunk(dir: &Path, first_seq: u64) -> Result<PathBuf> {
    let path = chunk_path(dir, first_seq);
    let head = header::encode(MAGIC, VERSION, [first_seq, 0, 0, 0, 0, 0]);
    qfs::atomic_write(&path, &head)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, min: u64) -> (Wal, Vec<(u64, Vec<u8>)>) {
        open_with(dir, min, WalOptions::default())
    }

    fn open_with(dir: &Path, min: u64, opts: WalOptions) -> (Wal, Vec<(u64, Vec<u8>)>) {
        let mut got = Vec::new();
        let wal = Wal::open(dir, opts, min, |s, b| {
            got.push((s, b.to_vec()));
            Ok(())
        })
        .unwrap();
        (wal, got)
    }

    fn only_chunk(dir: &Path) -> PathBuf {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v.pop().unwrap()
    }

    #[test]
    fn append_and_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, got) = open(dir.path(), 0);
        assert!(got.is_empty());
        for i in 0..100u32 {
            assert_eq!(wal.append(&i.to_le_bytes()).unwrap(), i as u64 + 1);
        }
        drop(wal);
        let (wal, got) = open(dir.path(), 0);
        assert_eq!(got.len(), 100);
        for (i, (s, b)) in got.iter().enumerate() {
            assert_eq!(*s, i as u64 + 1);
            assert_eq!(b, &(i as u32).to_le_bytes());
        }
        assert_eq!(wal.append(b"next").unwrap(), 101);
    }

    #[test]
    fn concurrent_appenders_are_all_durable_and_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open_with(dir.path(), 0, WalOptions { chunk_size: 4096 });
        let wal = Arc::new(wal);
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    (0..50u8)
                        .map(|i| (wal.append(&[t, i]).unwrap(), [t, i]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acked: Vec<(u64, [u8; 2])> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        acked.sort();
        drop(wal);
        let (_, got) = open(dir.path(), 0);
        assert_eq!(got.len(), 400);
        for ((s, b), (gs, gb)) in acked.iter().zip(&got) {
            assert_eq!(s, gs);
            assert_eq!(&b[..], &gb[..]);
        }
        // Each thread's own records keep their order.
        for t in 0..8u8 {
            let mine: Vec<u8> = got
                .iter()
                .filter(|(_, b)| b[0] == t)
                .map(|(_, b)| b[1])
                .collect();
            assert_eq!(mine, (0..50).collect::<Vec<_>>());
        }
    }

    #[test]
    fn truncated_tail_loses_only_the_torn_record() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 0);
        for i in 0..10u8 {
            wal.append(&[i; 100]).unwrap();
        }
        drop(wal);
        let p = only_chunk(dir.path());
        let len = fs::metadata(&p).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 30)
            .unwrap();
        let (wal, got) = open(dir.path(), 0);
        assert_eq!(got.len(), 9);
        assert_eq!(got[8].1, vec![8u8; 100]);
        // The torn bytes are gone and appends continue the numbering.
        assert_eq!(wal.append(b"after").unwrap(), 10);
        drop(wal);
        let (_, got) = open(dir.path(), 0);
        assert_eq!(got.len(), 10);
        assert_eq!(got[9].1, b"after");
    }

    #[test]
    fn flipped_byte_in_last_record_loses_only_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 0);
        for i in 0..10u8 {
            wal.append(&[i; 100]).unwrap();
        }
        drop(wal);
        let p = only_chunk(dir.path());
        let mut bytes = fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x40;
        fs::write(&p, &bytes).unwrap();
        let (_, got) = open(dir.path(), 0);
        assert_eq!(got.len(), 9);
        assert_eq!(fs::metadata(&p).unwrap().len() as usize, n - 116);
    }

    #[test]
    fn damage_in_a_closed_chunk_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open_with(dir.path(), 0, WalOptions { chunk_size: 300 });
        for i in 0..10u8 {
            wal.append(&[i; 100]).unwrap();
        }
        drop(wal);
        let mut chunks: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        chunks.sort();
        assert!(chunks.len() > 2);
        let mut bytes = fs::read(&chunks[0]).unwrap();
        bytes[100] ^= 1;
        fs::write(&chunks[0], &bytes).unwrap();
        let err = Wal::open(dir.path(), WalOptions::default(), 0, |_, _| Ok(()))
            .err()
            .unwrap();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }

    #[test]
    fn trim_drops_folded_chunks_and_keeps_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open_with(dir.path(), 0, WalOptions { chunk_size: 300 });
        for i in 0..10u8 {
            wal.append(&[i; 100]).unwrap();
        }
        let before = wal.size_bytes();
        wal.trim(6).unwrap();
        assert!(wal.size_bytes() < before);
        drop(wal);
        let (wal, got) = open(dir.path(), 0);
        // Whole chunks only: records <= 6 may survive if they share a chunk with later ones.
        assert!(got.iter().all(|(s, _)| *s <= 10));
        assert_eq!(got.last().unwrap().0, 10);
        assert!(got.first().unwrap().0 > 1);
        let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
        wal.trim(10).unwrap();
        assert_eq!(wal.size_bytes(), header::HEADER_LEN as u64);
        drop(wal);
        let (wal, got) = open(dir.path(), 0);
        assert!(got.is_empty());
        assert_eq!(wal.append(b"x").unwrap(), 11);
        drop(wal);
        // A caller that folded further than the log knows moves numbering forward.
        let (wal, got) = open(dir.path(), 20);
        assert_eq!(got.len(), 1);
        assert_eq!(wal.append(b"y").unwrap(), 20);
        drop(wal);
        let (_, got) = open(dir.path(), 0);
        assert_eq!(
            got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![11, 20]
        );
    }
    fn records(got: &[(u64, Vec<u8>)]) -> Vec<(u64, u8)> {
        got.iter().map(|(s, b)| (*s, b[0])).collect()
    }

    #[test]
    fn trim_cuts_the_active_chunk_down_to_its_unfolded_records() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 0);
        for i in 1..=10u8 {
            wal.write(&[i; 100]).unwrap();
        }
        // Records 7..=10 are written but not yet synced: the cut makes them durable.
        wal.trim(6).unwrap();
        let record = (RECORD_HEADER + 100) as u64;
        assert_eq!(wal.size_bytes(), header::HEADER_LEN as u64 + 4 * record);
        let on_disk: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(on_disk, wal.size_bytes());
        assert_eq!(wal.append(&[11; 100]).unwrap(), 11);
        drop(wal);
        let (wal, got) = open(dir.path(), 7);
        let want: Vec<(u64, u8)> = (7..=11u8).map(|i| (i as u64, i)).collect();
        assert_eq!(records(&got), want);
        assert_eq!(wal.append(b"x").unwrap(), 12);
    }

    #[test]
    fn trim_cuts_a_closed_chunk_that_holds_the_fold() {
        let dir = tempfile::tempdir().unwrap();
        // Three 116-byte records fill a chunk: chunks hold 1..=3, 4..=6, 7..=9, then 10.
        let (wal, _) = open_with(dir.path(), 0, WalOptions { chunk_size: 300 });
        for i in 1..=10u8 {
            wal.append(&[i; 100]).unwrap();
        }
        wal.trim(4).unwrap();
        let record = (RECORD_HEADER + 100) as u64;
        // Chunks 5..=6, 7..=9 and 10.
        assert_eq!(wal.size_bytes(), 3 * header::HEADER_LEN as u64 + 6 * record);
        drop(wal);
        let (_, got) = open(dir.path(), 5);
        let want: Vec<(u64, u8)> = (5..=10u8).map(|i| (i as u64, i)).collect();
        assert_eq!(records(&got), want);
    }

    #[test]
    fn a_crash_before_the_cut_chunk_is_removed_replays_each_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), 0);
        for i in 1..=10u8 {
            wal.append(&[i; 100]).unwrap();
        }
        let old = only_chunk(dir.path());
        let saved = fs::read(&old).unwrap();
        wal.trim(6).unwrap();
        drop(wal);
        // As if the process died after the copy was renamed into place, before the old chunk went.
        fs::write(&old, saved).unwrap();
        let (wal, got) = open(dir.path(), 7);
        let want: Vec<(u64, u8)> = (7..=10u8).map(|i| (i as u64, i)).collect();
        assert_eq!(records(&got), want);
        assert!(!old.exists(), "the superseded chunk is removed on open");
        assert_eq!(wal.append(b"x").unwrap(), 11);
    }
}
