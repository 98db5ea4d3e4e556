//! Payload field indexes of in-memory segments. The appendable segment keeps one index per indexed
//! field of the collection's schema, in the form a sealed index is built in ([`FieldIndexData`]: per
//! value its ascending offsets, per offset its shape), kept up to date as points are appended and as
//! a point's payload changes in place: its old values are taken out and its new ones put in. Deleting
//! a point only tombstones it, as in a sealed segment, and tombstones are applied when the index is
//! read. The indexes answer through [`IndexRead`], so they pass exactly what a sealed index (and the
//! payload) passes.
//!
//! The indexes live with the payloads, under the segment's `data` lock, so a view sees both as of
//! one moment. A frozen segment (being sealed) takes no more payload changes, so its indexes stay
//! exact; an index created while it is frozen is not added to it, and its conditions are left to its
//! payloads.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::build::{FieldIndexData, Keys, SortKey};
use super::{number_facet, string_facet, text_params, IndexRead};
use crate::payload_schema::{
    PayloadFieldSchema, PayloadSchema, PayloadSchemaType, TextIndexParams,
};
use crate::point::Payload;
use crate::query::FacetValue;

/// The payload indexes of one in-memory segment.
#[derive(Default)]
pub(crate) struct MemIndexes {
    fields: Vec<MemIndex>,
}

/// One field's index, with the schema it was built for.
pub(crate) struct MemIndex {
    field: String,
    schema: PayloadFieldSchema,
    data: FieldIndexData,
}

impl MemIndex {
    /// The index of `field` as `schema` has it (the field is there) over `payloads` (offsets `0..`).
    pub fn build(field: &str, schema: &PayloadSchema, payloads: &[Payload]) -> Self {
        let field_schema = schema[field].clone();
        let text = text_params(schema, field);
        let mut data = FieldIndexData::new(field_schema.data_type(), 0, text.as_ref());
        for (off, p) in payloads.iter().enumerate() {
            data.add(off as u32, p, field);
        }
        MemIndex {
            field: field.to_owned(),
            schema: field_schema,
            data,
        }
    }
}

impl MemIndexes {
    /// The index of `field` as `kind`, if one is kept.
    pub fn get(&self, field: &str, kind: PayloadSchemaType) -> Option<&FieldIndexData> {
        self.fields
            .iter()
            .find(|ix| ix.field == field && ix.data.kind == kind)
            .map(|ix| &ix.data)
    }

    /// The fields of `schema` that have no index here built for their schema.
    pub fn missing<'s>(&self, schema: &'s PayloadSchema) -> Vec<&'s str> {
        schema
            .iter()
            .filter(|&(field, s)| {
                !self
                    .fields
                    .iter()
                    .any(|ix| ix.field == *field && ix.schema == *s)
            })
            .map(|(field, _)| field.as_str())
            .collect()
    }

    /// Keeps the indexes `schema` has, as it has them, and adds `built` (see
    /// [`MemIndexes::missing`]).
    pub fn replace(&mut self, schema: &PayloadSchema, built: Vec<MemIndex>) {
        self.fields
            .retain(|ix| schema.get(&ix.field) == Some(&ix.schema));
        self.fields.extend(built);
    }

    /// Adds the values of `payload` at `off`: a new point, or one whose previous payload was
    /// [`MemIndexes::remove`]d.
    pub fn add(&mut self, off: u32, payload: &Payload) {
        for ix in &mut self.fields {
            ix.data.add(off, payload, &ix.field);
        }
    }

    /// Takes out the values of `payload`, what was added at `off`, before it changes in place.
    pub fn remove(&mut self, off: u32, payload: &Payload) {
        for ix in &mut self.fields {
            ix.data.remove(off, payload, &ix.field);
        }
    }

    /// Bytes the indexes hold, roughly: offsets, shapes and keys, not the allocator's overhead.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.fields.iter().map(|ix| heap_bytes(&ix.data)).sum()
    }
}

#[cfg(test)]
fn heap_bytes(data: &FieldIndexData) -> usize {
    fn map<K, T>(m: &std::collections::BTreeMap<K, Vec<T>>, key: impl Fn(&K) -> usize) -> usize {
        m.iter()
            .map(|(k, v)| {
                key(k) + size_of::<K>() + size_of::<Vec<T>>() + v.capacity() * size_of::<T>()
            })
            .sum()
    }
    let keys = match &data.keys {
        Keys::Numbers(m) => map(m, |_| 0),
        Keys::Strings(m) => map(m, String::capacity),
        Keys::Points(m) => map(m, |_| 0),
        Keys::Words(m) => map(m, String::capacity),
    };
    keys + data.shapes.capacity() * 4 + data.has_value.words().len() * 8
}

/// The least `u64` from the first key of `map` to its last for which `split` (false and then true
/// over that span) holds, found by bisecting the span: a `BTreeMap` cannot be bisected by a predicate
/// on its keys, but the keys' span can, and [`BTreeMap::range`] then starts there without walking the
/// keys below.
fn split_key<T>(map: &BTreeMap<u64, T>, split: &dyn Fn(u64) -> bool) -> Option<u64> {
    let (mut lo, mut hi) = (*map.first_key_value()?.0, *map.last_key_value()?.0);
    if !split(hi) {
        return None;
    }
    // `split(hi)` holds throughout; the answer is within `lo..=hi`.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if split(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

impl IndexRead for FieldIndexData {
    fn kind(&self) -> PayloadSchemaType {
        self.kind
    }

    fn points(&self) -> usize {
        self.has_value.len()
    }

    fn range_exact(&self) -> bool {
        FieldIndexData::range_exact(self)
    }

    fn shapes(&self) -> Option<&[u32]> {
        self.shapes_exact().then_some(self.shapes.as_slice())
    }

    fn text_params(&self) -> Option<&TextIndexParams> {
        self.text.as_ref().map(|t| &t.params)
    }

    fn has_value(&self) -> &[u64] {
        self.has_value.words()
    }

    fn string_offsets(&self, s: &str, f: &mut dyn FnMut(u32)) {
        if let Keys::Strings(map) = &self.keys {
            map.get(s).into_iter().flatten().for_each(|&o| f(o));
        }
    }

    fn number_offsets(&self, key: u64, f: &mut dyn FnMut(u32)) {
        if let Keys::Numbers(map) = &self.keys {
            map.get(&key).into_iter().flatten().for_each(|&o| f(o));
        }
    }

    fn number_span_offsets(
        &self,
        lower: &dyn Fn(u64) -> bool,
        upper: &dyn Fn(u64) -> bool,
        f: &mut dyn FnMut(u32),
    ) {
        let Keys::Numbers(map) = &self.keys else {
            return;
        };
        let Some(start) = split_key(map, lower) else {
            return;
        };
        map.range(start..)
            .take_while(|&(&k, _)| upper(k))
            .for_each(|(_, offsets)| offsets.iter().for_each(|&o| f(o)));
    }

    fn walk_numbers(
        &self,
        desc: bool,
        split: &dyn Fn(u64) -> bool,
        f: &mut dyn FnMut(u64, &[u32]) -> bool,
    ) {
        let Keys::Numbers(map) = &self.keys else {
            return;
        };
        let at = split_key(map, split);
        let mut visit = |(&k, offsets): (&u64, &Vec<u32>)| f(k, offsets);
        match (desc, at) {
            (false, Some(at)) => _ = map.range(at..).all(&mut visit),
            (false, None) => {}
            (true, Some(at)) => _ = map.range(..at).rev().all(&mut visit),
            (true, None) => _ = map.iter().rev().all(&mut visit),
        }
    }

    fn word_postings(&self, q: &str, prefix: bool, f: &mut dyn FnMut(u32, u32, u32)) {
        let Keys::Words(map) = &self.keys else { return };
        let mut each = |postings: &Vec<(u32, u32, u32)>| {
            postings.iter().for_each(|&(o, p, a)| f(o, p, a));
        };
        if prefix {
            map.range::<str, _>((Bound::Included(q), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(q))
                .for_each(|(_, postings)| each(postings));
        } else if let Some(postings) = map.get(q) {
            each(postings);
        }
    }

    fn geo_points(&self, f: &mut dyn FnMut(u32, f64, f64)) {
        if let Keys::Points(map) = &self.keys {
            for (&lat, points) in map {
                let lat = SortKey::to_f64(lat);
                points.iter().for_each(|&(off, lon)| f(off, lat, lon));
            }
        }
    }

    fn for_each_value(&self, f: &mut dyn FnMut(FacetValue, &[u32])) {
        match &self.keys {
            Keys::Numbers(map) => {
                for (&k, offsets) in map {
                    if let Some(value) = number_facet(self.kind, k) {
                        f(value, offsets);
                    }
                }
            }
            Keys::Strings(map) => {
                for (s, offsets) in map {
                    if let Some(value) = string_facet(self.kind, s) {
                        f(value, offsets);
                    }
                }
            }
            Keys::Points(_) | Keys::Words(_) => {}
        }
    }
}
