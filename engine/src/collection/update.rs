//! Update operations as callers give them ([`UpdateOperation`]) turned into the logged [`Operation`]s.
//!
//! Each operation is first checked on its own ([`check`]: vector names and dimensions, filters, keys).
//! Then, under the writer lock, [`Pending::resolve`] turns it into what the log holds (filters become
//! ids, conditions are judged, a missing point is an error) against the state that the operations
//! before it in the same batch leave. Nothing is applied while resolving: the earlier operations'
//! effects on which points exist and on their payloads are tracked on the side, so a batch that fails
//! at any operation writes nothing, and a filter in a later operation still sees the earlier ones.

use std::borrow::Cow;
use std::collections::HashMap;

use super::ops::Operation;
use super::state::{self, SegmentSet};
use super::{check_filter, check_selector, payload, validate};
use crate::config::CollectionConfig;
use crate::filter::Filter;
use crate::point::{Payload, PayloadOp, PointsSelector, UpdateOperation};
use crate::{Error, PointId, Result};

/// Checks what an operation can be checked for without the stored points, and normalises its vectors.
pub(crate) fn check(config: &CollectionConfig, op: &mut UpdateOperation) -> Result<()> {
    match op {
        UpdateOperation::Upsert { points, conditions } => {
            validate::points(config, points)?;
            check_filter(conditions.update_filter.as_ref())
        }
        UpdateOperation::Delete(selector) => check_selector(selector),
        UpdateOperation::Payload { selector, op } => {
            check_selector(selector)?;
            if let PayloadOp::Set { key: Some(k), .. } = op {
                if crate::filter::path::parsed(k).is_none() {
                    return Err(Error::InvalidInput(format!(
                        "payload key {k:?} is not a path: use `a.b`, `a[0].b`, `a[].b` or `\"a.b\"`"
                    )));
                }
            }
            Ok(())
        }
        UpdateOperation::UpdateVectors {
            points,
            update_filter,
        } => {
            for p in points.iter_mut() {
                if p.vectors.is_empty() {
                    return Err(Error::InvalidInput(format!(
                        "point {}: give at least one vector to update",
                        p.id
                    )));
                }
                validate::vectors(config, &p.id, &mut p.vectors)?;
            }
            check_filter(update_filter.as_ref())
        }
        UpdateOperation::DeleteVectors { selector, names } => {
            check_selector(selector)?;
            if names.is_empty() {
                return Err(Error::InvalidInput(
                    "give at least one vector name to delete in `vector`".into(),
                ));
            }
            names
                .iter()
                .try_for_each(|name| validate::vector_name(config, name))
        }
    }
}

/// The state the operations resolved so far leave, over the stored points.
pub(crate) struct Pending<'a> {
    set: &'a SegmentSet,
    /// Points an earlier operation wrote: their payload after it, or `None` once deleted.
    changed: HashMap<PointId, Option<Payload>>,
}

impl<'a> Pending<'a> {
    pub fn new(set: &'a SegmentSet) -> Self {
        Pending {
            set,
            changed: HashMap::new(),
        }
    }

    /// The payload of `id` if it exists at this point of the batch.
    fn payload(&self, id: &PointId) -> Option<Cow<'_, Payload>> {
        match self.changed.get(id) {
            Some(p) => p.as_ref().map(Cow::Borrowed),
            None => state::live_payload(self.set, id).map(Cow::Owned),
        }
    }

    fn filter_ids(&self, filter: &Filter) -> Vec<PointId> {
        let mut ids: Vec<PointId> = if self.changed.is_empty() {
            state::resolve_filter(self.set, filter)
        } else {
            state::resolve_filter(self.set, filter)
                .into_iter()
                .filter(|id| !self.changed.contains_key(id))
                .collect()
        };
        ids.extend(self.changed.iter().filter_map(|(id, p)| {
            p.as_ref()
                .is_some_and(|p| filter.matches(id, p))
                .then_some(*id)
        }));
        ids
    }

    fn ids(&self, selector: PointsSelector) -> Vec<PointId> {
        match selector {
            PointsSelector::Ids(ids) => ids,
            PointsSelector::Filter(f) => self.filter_ids(&f),
        }
    }

    /// The logged form of a checked operation, tracking its effect for the ones after it.
    pub fn resolve(&mut self, op: UpdateOperation) -> Result<Operation> {
        Ok(match op {
            UpdateOperation::Upsert {
                mut points,
                conditions,
            } => {
                if conditions != Default::default() {
                    points.retain(|p| conditions.allows(&p.id, self.payload(&p.id).as_deref()));
                }
                for p in &points {
                    self.changed
                        .insert(p.id, Some(p.payload.clone().unwrap_or_default()));
                }
                Operation::Upsert(points)
            }
            UpdateOperation::Delete(selector) => {
                let ids = self.ids(selector);
                for id in &ids {
                    self.changed.insert(*id, None);
                }
                Operation::Delete(ids)
            }
            UpdateOperation::Payload { selector, op } => {
                let ids = self.ids(selector);
                for id in &ids {
                    if let Some(mut p) = self.payload(id).map(Cow::into_owned) {
                        payload::apply(&mut p, &op);
                        self.changed.insert(*id, Some(p));
                    }
                }
                Operation::Payload { ids, op }
            }
            UpdateOperation::UpdateVectors {
                points,
                update_filter,
            } => {
                let mut out = Vec::with_capacity(points.len());
                for p in points {
                    let Some(payload) = self.payload(&p.id) else {
                        return Err(Error::NoSuchPoint(p.id));
                    };
                    if update_filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&p.id, &payload))
                    {
                        out.push((p.id, p.vectors));
                    }
                }
                Operation::UpdateVectors(out)
            }
            UpdateOperation::DeleteVectors { selector, names } => {
                let ids = self.ids(selector);
                if let Some(missing) = ids.iter().find(|id| self.payload(id).is_none()) {
                    return Err(Error::NoSuchPoint(*missing));
                }
                Operation::DeleteVectors { ids, names }
            }
        })
    }
}
