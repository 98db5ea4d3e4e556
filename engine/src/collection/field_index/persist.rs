//! Field index files as part of a sealed segment: written beside the segment's other files when a seal
//! or vacuum writes it, listed in the manifest (so they are checksummed, garbage-collected and carried
//! by snapshots like every segment file), opened with the segment, and written for segments already
//! sealed when an index is created.
//!
//! A file is named in the manifest `field:<type>:<field>`. A segment never changes, so its file for a
//! field and type stays valid for its life: a deleted index's files stay listed (unused) until a vacuum
//! rewrites the segment, and creating the same index again reuses them.

use std::path::Path;

use quiver_storage::segment::{segment_dir, segment_file_path};
use quiver_storage::{FileEntry, Manifest, SegmentEntry, SegmentFile};

use super::build::{self, FieldIndexData};
use super::file::{self, IndexBytes};
use super::{FieldIndex, IndexRead};
use crate::collection::payload;
use crate::collection::segment::Sealed;
use crate::collection::state::Shared;
use crate::payload_schema::{PayloadSchema, PayloadSchemaType, TextIndexParams};
use crate::point::Payload;
use crate::Result;

/// Prefix of the [`SegmentFile::Attached`] name of a field index.
const ATTACHED_PREFIX: &str = "field:";

fn attached_name(field: &str, kind: PayloadSchemaType) -> String {
    format!("{ATTACHED_PREFIX}{kind}:{field}")
}

/// The field and type an attached file name stands for, if it is a field index's.
pub(crate) fn parse_attached(name: &str) -> Option<(&str, PayloadSchemaType)> {
    let (kind, field) = name.strip_prefix(ATTACHED_PREFIX)?.split_once(':')?;
    Some((field, PayloadSchemaType::from_name(kind)?))
}

/// Opens a listed field index file of a segment of `points` points.
pub(crate) fn open(path: &Path, kind: PayloadSchemaType, points: usize) -> Result<FieldIndex> {
    Ok(FieldIndex::new(IndexBytes::open(path, kind, points)?))
}

/// A file name in segment `entry` that no listed file has and no file in its directory has (a file
/// unlisted by a new manifest stays listed in the stored one until that is replaced).
fn free_file_name(dir: &Path, entry: &SegmentEntry) -> String {
    (0..)
        .map(|n| format!("field-{n}.pidx"))
        .find(|name| {
            let rel = segment_file_path(entry.id, name);
            !entry.files.iter().any(|f| f.path == rel)
                && !segment_dir(dir, entry.id).join(name).exists()
        })
        .expect("some name is free")
}

/// Writes one index of segment `entry` and lists it there.
fn write_listed(
    dir: &Path,
    entry: &mut SegmentEntry,
    field: &str,
    data: &FieldIndexData,
) -> Result<()> {
    let name = free_file_name(dir, entry);
    let written = file::write(&segment_dir(dir, entry.id).join(&name), data)?;
    entry.files.push(FileEntry::new(
        SegmentFile::Attached {
            name: attached_name(field, data.kind),
        },
        segment_file_path(entry.id, &name),
        written,
    ));
    Ok(())
}

/// Writes the index of every field of `schema` for a segment being written from `payloads` (JSON
/// bytes, one per point) and lists them in its entry.
pub(crate) fn write_for_new_segment(
    dir: &Path,
    entry: &mut SegmentEntry,
    schema: &PayloadSchema,
    payloads: &[Vec<u8>],
) -> Result<()> {
    let text: Vec<Option<TextIndexParams>> = schema
        .keys()
        .map(|field| super::text_params(schema, field))
        .collect();
    let fields: Vec<build::FieldSpec<'_>> = schema
        .iter()
        .zip(&text)
        .map(|((field, s), text)| (field.as_str(), s.data_type(), text.as_ref()))
        .collect();
    let parse = |off: u32| -> Payload { payload::parse(&payloads[off as usize]) };
    let built = build::build_all(payloads.len(), &parse, &fields);
    for ((field, _, _), data) in fields.iter().zip(&built) {
        write_listed(dir, entry, field, data)?;
    }
    Ok(())
}

impl Shared {
    /// Gives every sealed segment its index of `field` as `kind` from a file: a listed one, or one
    /// written now (and listed in a new manifest). The caller holds the optimizer lock (`manifest`)
    /// from its schema change to here, so no seal or vacuum swaps segments meanwhile, a seal that
    /// starts later reads the schema that already has the index, and another change of the field
    /// cannot slip in between (its schema over this one's files).
    /// A listed `text` index whose words were made with other params than `text` (the index was
    /// created again with other params) is written again and listed in its place.
    pub(crate) fn persist_field_index(
        &self,
        manifest: &mut Manifest,
        field: &str,
        kind: PayloadSchemaType,
        text: Option<&TextIndexParams>,
    ) -> Result<()> {
        let sealed: Vec<std::sync::Arc<Sealed>> = self.snapshot().sealed.clone();
        let mut next: Manifest = manifest.clone();
        let mut opened = Vec::new();
        let name = attached_name(field, kind);
        for seg in &sealed {
            let Some(entry) = next.segments.iter_mut().find(|e| e.id == seg.id) else {
                continue;
            };
            let listed = |e: &SegmentEntry| {
                e.files
                    .iter()
                    .find(|f| matches!(&f.file, SegmentFile::Attached { name: n } if *n == name))
                    .map(|f| f.full_path(&self.dir))
            };
            let mut index = match listed(entry) {
                Some(path) => Some(open(&path, kind, seg.points.len())?),
                None => None,
            };
            if index.as_ref().is_some_and(|ix| !ix.words_made_with(text)) {
                // Unlisted here; the file itself goes with the segment's directory.
                entry.files.retain(
                    |f| !matches!(&f.file, SegmentFile::Attached { name: n } if *n == name),
                );
                index = None;
            }
            if index.is_none() {
                let data = build::build_all(
                    seg.points.len(),
                    &|off| payload::parse(seg.points.payload(off)),
                    &[(field, kind, text)],
                );
                write_listed(&self.dir, entry, field, &data[0])?;
                let path = listed(entry).expect("listed above");
                index = Some(open(&path, kind, seg.points.len())?);
            }
            opened.push((seg.clone(), index.expect("opened above")));
        }
        if next != *manifest {
            next.generation += 1;
            next.store(&self.dir)?;
            *manifest = next;
        }
        for (seg, index) in opened {
            seg.attach_field_index(field, kind, index);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::point::{NamedVectors, PointInsert, Vector};
    use crate::PointId;

    /// A PUT of an index and a DELETE of it, both while a seal holds the optimizer lock: they
    /// must apply in one order, schema and files together. Taken apart, the PUT stores its schema,
    /// waits for the lock, the DELETE removes the schema meanwhile, and the PUT then attaches an
    /// index the schema no longer has.
    #[test]
    fn an_index_change_waiting_for_a_seal_is_not_split_by_a_delete() {
        let dir = tempfile::tempdir().unwrap();
        let (_cs, c) = super::super::tests::test_collection(dir.path());
        let inserts = (0..200u64).map(|i| {
            let mut vectors = NamedVectors::new();
            vectors.insert(String::new(), Vector::Dense(vec![1.0, i as f32]));
            PointInsert {
                id: PointId::Num(i),
                vectors,
                payload: Some(
                    json!({"k": format!("word{}", i % 5)})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            }
        });
        c.upsert(inserts.collect()).unwrap();
        c.flush().unwrap();
        let busy = c.shared.optimizer.lock();
        let put = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let schema = serde_json::from_value(json!({"type": "text"})).unwrap();
                c.create_payload_index("k", schema).unwrap();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let delete = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                c.delete_payload_index("k").unwrap();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(busy);
        put.join().unwrap();
        delete.join().unwrap();
        let indexed = c.payload_schema().contains_key("k");
        let sealed = c.shared.snapshot().sealed.clone();
        assert_eq!(sealed.len(), 1);
        let attached = sealed[0]
            .field_indexes
            .lock()
            .keys()
            .any(|(field, _)| field == "k");
        assert_eq!(
            attached, indexed,
            "the segment holds an index of `k` exactly when the schema has one"
        );
    }
}
