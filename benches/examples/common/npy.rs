//! `.npy` files (little-endian, C order) as `scripts/bench` writes them with numpy: the reader the
//! peer benchmark programs share, and a writer for the ids they hand back.

#![allow(dead_code)] // each program that includes this file uses some of it

use std::io::{Read, Write};
use std::path::Path;

/// Errors of the benchmark programs: a message for the terminal.
pub type Res<T> = Result<T, String>;

/// A little-endian `.npy` array in C order: its shape and raw element bytes.
pub struct Npy {
    pub shape: Vec<usize>,
    pub descr: String,
    pub bytes: Vec<u8>,
}

pub fn read_npy(path: &Path) -> Res<Npy> {
    let err = |why: String| format!("{}: {why}", path.display());
    let mut f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut all = Vec::new();
    f.read_to_end(&mut all).map_err(|e| err(e.to_string()))?;
    if all.len() < 10 || &all[..6] != b"\x93NUMPY" {
        return Err(err("not a .npy file".into()));
    }
    let (hlen, start) = match all[6] {
        1 => (u16::from_le_bytes([all[8], all[9]]) as usize, 10),
        2 | 3 => (
            u32::from_le_bytes([all[8], all[9], all[10], all[11]]) as usize,
            12,
        ),
        v => return Err(err(format!(".npy version {v} is not supported"))),
    };
    let header = std::str::from_utf8(
        all.get(start..start + hlen)
            .ok_or_else(|| err("short header".into()))?,
    )
    .map_err(|_| err("header is not text".into()))?;
    let field = |name: &str| -> Res<&str> {
        let at = header
            .find(&format!("'{name}':"))
            .ok_or_else(|| err(format!("header has no {name}")))?;
        Ok(header[at + name.len() + 3..].trim_start())
    };
    if field("fortran_order")?.starts_with("True") {
        return Err(err("Fortran order is not supported".into()));
    }
    let descr = field("descr")?
        .trim_start_matches('\'')
        .split('\'')
        .next()
        .unwrap_or_default()
        .to_string();
    let shape_text = field("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| err("bad shape".into()))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| err(format!("bad shape {inner}")))
        })
        .collect::<Res<Vec<_>>>()?;
    let mut bytes = all.split_off(start + hlen);
    let elem = match descr.as_str() {
        "<f4" | "<i4" | "<u4" => 4,
        "<u8" | "<i8" => 8,
        other => return Err(err(format!("dtype {other} is not supported"))),
    };
    let want = shape.iter().product::<usize>() * elem;
    if bytes.len() < want {
        return Err(err(format!(
            "{} data bytes, shape needs {want}",
            bytes.len()
        )));
    }
    bytes.truncate(want);
    Ok(Npy {
        shape,
        descr,
        bytes,
    })
}

// Each program that includes this file uses some of these accessors.
#[allow(dead_code)]
impl Npy {
    pub fn u32s(&self) -> Res<Vec<u32>> {
        if self.descr != "<u4" {
            return Err(format!("expected uint32, found {}", self.descr));
        }
        Ok(self
            .bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub fn i64s(&self) -> Res<Vec<i64>> {
        if self.descr != "<i8" {
            return Err(format!("expected int64, found {}", self.descr));
        }
        Ok(self
            .bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    pub fn f32s(&self) -> Res<Vec<f32>> {
        if self.descr != "<f4" {
            return Err(format!("expected float32, found {}", self.descr));
        }
        Ok(self
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub fn u64s(&self) -> Res<Vec<u64>> {
        if self.descr != "<u8" && self.descr != "<i8" {
            return Err(format!("expected 64-bit integers, found {}", self.descr));
        }
        Ok(self
            .bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    pub fn i32s(&self) -> Res<Vec<i32>> {
        if self.descr != "<i4" {
            return Err(format!("expected int32, found {}", self.descr));
        }
        Ok(self
            .bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub fn cols(&self) -> Res<usize> {
        match self.shape.as_slice() {
            [_, d] if *d > 0 => Ok(*d),
            s => Err(format!("expected a 2-d array, shape {s:?}")),
        }
    }
}

/// Writes `rows` (each padded with -1 to `cols`) as an `(rows, cols)` int64 `.npy` file.
#[allow(dead_code)]
pub fn write_ids(path: &Path, rows: &[Vec<i64>], cols: usize) -> Res<()> {
    let mut header = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({}, {cols}), }}",
        rows.len()
    );
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + rows.len() * cols * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for r in rows {
        for c in 0..cols {
            out.extend_from_slice(&r.get(c).copied().unwrap_or(-1).to_le_bytes());
        }
    }
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(&out)
        .map_err(|e| format!("{}: {e}", path.display()))
}
