//! Operations as they are logged in the WAL: a compact binary encoding (vectors as raw little-endian
//! `f32`, payloads as JSON). Filters are resolved to ids before logging, so replay is deterministic.

use quiver_storage::PointId;

use crate::point::{NamedVectors, Payload, PayloadOp, PointInsert, SparseVector, Vector};
use crate::{Error, Result};

const FORMAT: u8 = 1;

/// A logged operation. Vectors are already validated and normalised.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Operation {
    Upsert(Vec<PointInsert>),
    Delete(Vec<PointId>),
    Payload {
        ids: Vec<PointId>,
        op: PayloadOp,
    },
    /// Replaces the named vectors given; the points' other vectors and payloads stay.
    UpdateVectors(Vec<(PointId, NamedVectors)>),
    /// Removes the named vectors from the points.
    DeleteVectors {
        ids: Vec<PointId>,
        names: Vec<String>,
    },
    /// Operations applied in order, logged as one record so that a crash keeps all or none.
    Batch(Vec<Operation>),
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn f32s(&mut self, v: &[f32]) {
        self.0.reserve(v.len() * 4);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn id(&mut self, id: &PointId) {
        match id {
            PointId::Num(n) => {
                self.u8(0);
                self.0.extend_from_slice(&n.to_le_bytes());
            }
            PointId::Uuid(u) => {
                self.u8(1);
                self.0.extend_from_slice(u.as_bytes());
            }
        }
    }
    fn ids(&mut self, ids: &[PointId]) {
        self.u32(ids.len() as u32);
        for id in ids {
            self.id(id);
        }
    }
    fn vectors(&mut self, vectors: &NamedVectors) {
        self.u32(vectors.len() as u32);
        for (name, v) in vectors {
            self.bytes(name.as_bytes());
            match v {
                Vector::Dense(d) => {
                    self.u8(0);
                    self.u32(d.len() as u32);
                    self.f32s(d);
                }
                Vector::Multi(rows) => {
                    self.u8(1);
                    self.u32(rows.len() as u32);
                    self.u32(rows.first().map_or(0, |r| r.len()) as u32);
                    for r in rows {
                        self.f32s(r);
                    }
                }
                Vector::Sparse(sv) => {
                    self.u8(2);
                    self.u32(sv.indices.len() as u32);
                    for i in &sv.indices {
                        self.u32(*i);
                    }
                    self.f32s(&sv.values);
                }
            }
        }
    }
    fn strings(&mut self, strings: &[String]) {
        self.u32(strings.len() as u32);
        for s in strings {
            self.bytes(s.as_bytes());
        }
    }
    fn payload(&mut self, p: &Payload) {
        let json = serde_json::to_vec(p).expect("a JSON map always serialises");
        self.bytes(&json);
    }
}

struct Reader<'a>(&'a [u8]);

fn short() -> Error {
    Error::Storage(quiver_storage::Error::Decode(
        "WAL record ends early".into(),
    ))
}

fn bad(what: &str) -> Error {
    Error::Storage(quiver_storage::Error::Decode(format!(
        "WAL record has {what}"
    )))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(short());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("a non-UTF-8 string"))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(short)?)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect())
    }
    fn id(&mut self) -> Result<PointId> {
        match self.u8()? {
            0 => Ok(PointId::Num(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8"),
            ))),
            1 => Ok(PointId::Uuid(uuid::Uuid::from_bytes(
                self.take(16)?.try_into().expect("16"),
            ))),
            _ => Err(bad("an unknown id tag")),
        }
    }
    fn ids(&mut self) -> Result<Vec<PointId>> {
        let n = self.u32()? as usize;
        (0..n).map(|_| self.id()).collect()
    }
    fn vectors(&mut self) -> Result<NamedVectors> {
        let nv = self.u32()? as usize;
        let mut vectors = NamedVectors::new();
        for _ in 0..nv {
            let name = self.string()?;
            let v = match self.u8()? {
                0 => {
                    let len = self.u32()? as usize;
                    Vector::Dense(self.f32s(len)?)
                }
                1 => {
                    let rows = self.u32()? as usize;
                    let dim = self.u32()? as usize;
                    let mut m = Vec::with_capacity(rows.min(1 << 16));
                    for _ in 0..rows {
                        m.push(self.f32s(dim)?);
                    }
                    Vector::Multi(m)
                }
                2 => {
                    let n = self.u32()? as usize;
                    let indices = (0..n).map(|_| self.u32()).collect::<Result<_>>()?;
                    let values = self.f32s(n)?;
                    Vector::Sparse(SparseVector { indices, values })
                }
                _ => return Err(bad("an unknown vector tag")),
            };
            vectors.insert(name, v);
        }
        Ok(vectors)
    }
    fn strings(&mut self) -> Result<Vec<String>> {
        let n = self.u32()? as usize;
        (0..n).map(|_| self.string()).collect()
    }
    fn payload(&mut self) -> Result<Payload> {
        serde_json::from_slice(self.bytes()?).map_err(|_| bad("an invalid payload"))
    }
}

impl Operation {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u8(FORMAT);
        match self {
            Operation::Upsert(points) => {
                w.u8(1);
                w.u32(points.len() as u32);
                for p in points {
                    w.id(&p.id);
                    match &p.payload {
                        Some(pl) => w.payload(pl),
                        None => w.payload(&Payload::new()),
                    }
                    w.vectors(&p.vectors);
                }
            }
            Operation::Delete(ids) => {
                w.u8(2);
                w.ids(ids);
            }
            Operation::Payload { ids, op } => {
                w.u8(3);
                w.ids(ids);
                match op {
                    PayloadOp::Set { payload, key } => {
                        w.u8(0);
                        w.payload(payload);
                        match key {
                            Some(k) => {
                                w.u8(1);
                                w.bytes(k.as_bytes());
                            }
                            None => w.u8(0),
                        }
                    }
                    PayloadOp::Overwrite(p) => {
                        w.u8(1);
                        w.payload(p);
                    }
                    PayloadOp::DeleteKeys(keys) => {
                        w.u8(2);
                        w.u32(keys.len() as u32);
                        for k in keys {
                            w.bytes(k.as_bytes());
                        }
                    }
                    PayloadOp::Clear => w.u8(3),
                }
            }
            Operation::UpdateVectors(points) => {
                w.u8(4);
                w.u32(points.len() as u32);
                for (id, vectors) in points {
                    w.id(id);
                    w.vectors(vectors);
                }
            }
            Operation::DeleteVectors { ids, names } => {
                w.u8(5);
                w.ids(ids);
                w.strings(names);
            }
            Operation::Batch(ops) => {
                w.u8(6);
                w.u32(ops.len() as u32);
                for op in ops {
                    w.bytes(&op.encode());
                }
            }
        }
        w.0
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Operation> {
        let mut r = Reader(bytes);
        if r.u8()? != FORMAT {
            return Err(bad("an unknown format version"));
        }
        let op = match r.u8()? {
            1 => {
                let n = r.u32()? as usize;
                let mut points = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let id = r.id()?;
                    let payload = r.payload()?;
                    let vectors = r.vectors()?;
                    points.push(PointInsert {
                        id,
                        vectors,
                        payload: Some(payload),
                    });
                }
                Operation::Upsert(points)
            }
            2 => Operation::Delete(r.ids()?),
            3 => {
                let ids = r.ids()?;
                let op = match r.u8()? {
                    0 => {
                        let payload = r.payload()?;
                        let key = match r.u8()? {
                            0 => None,
                            _ => Some(r.string()?),
                        };
                        PayloadOp::Set { payload, key }
                    }
                    1 => PayloadOp::Overwrite(r.payload()?),
                    2 => {
                        let n = r.u32()? as usize;
                        PayloadOp::DeleteKeys((0..n).map(|_| r.string()).collect::<Result<_>>()?)
                    }
                    3 => PayloadOp::Clear,
                    _ => return Err(bad("an unknown payload operation")),
                };
                Operation::Payload { ids, op }
            }
            4 => {
                let n = r.u32()? as usize;
                let mut points = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    let id = r.id()?;
                    points.push((id, r.vectors()?));
                }
                Operation::UpdateVectors(points)
            }
            5 => Operation::DeleteVectors {
                ids: r.ids()?,
                names: r.strings()?,
            },
            6 => {
                let n = r.u32()? as usize;
                let mut ops = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    ops.push(Operation::decode(r.bytes()?)?);
                }
                Operation::Batch(ops)
            }
            _ => return Err(bad("an unknown operation")),
        };
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_round_trip() {
        let mut vectors = NamedVectors::new();
        vectors.insert(String::new(), Vector::Dense(vec![0.5, -1.25, 3.0]));
        vectors.insert(
            "m".into(),
            Vector::Multi(vec![vec![1.0, 2.0], vec![3.0, 4.0]]),
        );
        vectors.insert(
            "s".into(),
            Vector::Sparse(SparseVector {
                indices: vec![3, 70_000],
                values: vec![0.25, -2.0],
            }),
        );
        let payload = json!({"a": 1, "b": ["x"]}).as_object().unwrap().clone();
        let ops = [
            Operation::Upsert(vec![PointInsert {
                id: PointId::Uuid(uuid::Uuid::from_u128(99)),
                vectors: vectors.clone(),
                payload: Some(payload.clone()),
            }]),
            Operation::Delete(vec![PointId::Num(3), PointId::Num(u64::MAX)]),
            Operation::Payload {
                ids: vec![PointId::Num(1)],
                op: PayloadOp::Set {
                    payload: payload.clone(),
                    key: Some("a.b".into()),
                },
            },
            Operation::Payload {
                ids: vec![],
                op: PayloadOp::DeleteKeys(vec!["a".into(), "c".into()]),
            },
            Operation::Payload {
                ids: vec![PointId::Num(2)],
                op: PayloadOp::Overwrite(payload),
            },
            Operation::Payload {
                ids: vec![PointId::Num(2)],
                op: PayloadOp::Clear,
            },
            Operation::UpdateVectors(vec![(PointId::Num(7), vectors.clone())]),
            Operation::DeleteVectors {
                ids: vec![PointId::Num(7), PointId::Uuid(uuid::Uuid::from_u128(1))],
                names: vec!["m".into(), String::new()],
            },
            Operation::Batch(vec![
                Operation::Delete(vec![PointId::Num(1)]),
                Operation::UpdateVectors(vec![(PointId::Num(2), vectors)]),
                Operation::Batch(vec![]),
            ]),
        ];
        for op in ops {
            let bytes = op.encode();
            assert_eq!(Operation::decode(&bytes).unwrap(), op);
            assert!(Operation::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    /// Records already in logs must keep decoding: the upsert encoding is fixed byte for byte.
    #[test]
    fn upsert_encoding_is_unchanged() {
        let mut vectors = NamedVectors::new();
        vectors.insert(String::new(), Vector::Dense(vec![1.0]));
        let op = Operation::Upsert(vec![PointInsert {
            id: PointId::Num(5),
            vectors,
            payload: None,
        }]);
        let mut want = vec![FORMAT, 1, 1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[2, 0, 0, 0, b'{', b'}']);
        want.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        want.extend_from_slice(&1.0f32.to_le_bytes());
        assert_eq!(op.encode(), want);
    }
}
