//! Grouping a query's hits by a payload field, as Qdrant's `query/groups` does.
//!
//! Grouping cannot be pushed into one index walk, so it runs the query in rounds over one snapshot:
//! each round fetches `query.limit` more hits, leaving out the points already placed and the groups
//! already full, until the best `groups` groups are all full or nothing new comes back; then a few
//! rounds restricted to the best groups that are not full yet try to fill them. The bounds on rounds
//! are Qdrant's, so answers agree with Qdrant's on the same data.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::planner;
use super::read;
use super::state::SegmentSet;
use crate::config::CollectionConfig;
use crate::filter::{
    path, Condition, FieldCondition, Filter, HasIdCondition, IsEmptyCondition, Match, MatchValue,
    OneOrMany, PayloadField,
};
use crate::point::{Payload, ScoredPoint};
use crate::query::{GroupKey, GroupsRequest, GroupsResponse, PointGroup, QueryRequest};
use crate::{Error, PointId, Result, WithPayload, WithVectors};

/// Rounds that look for new groups (Qdrant's `MAX_GET_GROUPS_REQUESTS`).
const MAX_GROUP_ROUNDS: usize = 5;
/// Rounds that fill the best groups that are not full (Qdrant's `MAX_GROUP_FILLING_REQUESTS`).
const MAX_FILLING_ROUNDS: usize = 5;

/// How the root stage ranks its hits.
#[derive(Clone, Copy)]
enum Order {
    HigherFirst,
    LowerFirst,
    /// A request without a query lists points in id order; arrival order is the ranking.
    Arrival,
}

impl Order {
    fn of(config: &CollectionConfig, request: &QueryRequest) -> Result<Order> {
        let using = request.using.as_deref().unwrap_or("");
        Ok(match &request.query {
            None => Order::Arrival,
            Some(q) if planner::higher_is_better(config, using, q)? => Order::HigherFirst,
            Some(_) => Order::LowerFirst,
        })
    }

    /// `Less` when `a` ranks before `b`.
    fn cmp(self, a: &ScoredPoint, b: &ScoredPoint) -> Ordering {
        match self {
            Order::HigherFirst => b.score.total_cmp(&a.score),
            Order::LowerFirst => a.score.total_cmp(&b.score),
            Order::Arrival => Ordering::Equal,
        }
    }
}

/// Groups in the order they were first seen, each with its best hits so far.
struct Aggregator {
    order: Order,
    group_size: usize,
    groups: Vec<PointGroup>,
    index: HashMap<GroupKey, usize>,
    placed: HashSet<PointId>,
}

impl Aggregator {
    fn add(&mut self, group_by: &str, hit: &ScoredPoint) {
        let Some(payload) = &hit.payload else {
            return;
        };
        for key in group_keys(payload, group_by) {
            let at = *self.index.entry(key.clone()).or_insert_with(|| {
                self.groups.push(PointGroup {
                    key,
                    hits: Vec::new(),
                });
                self.groups.len() - 1
            });
            let hits = &mut self.groups[at].hits;
            if hits.iter().any(|h| h.id == hit.id) {
                continue;
            }
            // Stable: among equal scores the earlier hit stays first.
            let pos = hits.partition_point(|h| self.order.cmp(h, hit) != Ordering::Greater);
            hits.insert(pos, hit.clone());
            hits.truncate(self.group_size);
        }
        self.placed.insert(hit.id);
    }

    fn is_full(&self, group: &PointGroup) -> bool {
        group.hits.len() >= self.group_size
    }

    /// The best `n` groups by their best hit; ties keep the order the groups were found in.
    fn best(&self, n: usize) -> Vec<&PointGroup> {
        let mut groups: Vec<&PointGroup> = self.groups.iter().collect();
        groups.sort_by(|a, b| self.order.cmp(&a.hits[0], &b.hits[0]));
        groups.truncate(n);
        groups
    }

    fn full_keys(&self) -> Vec<&GroupKey> {
        self.groups
            .iter()
            .filter(|g| self.is_full(g))
            .map(|g| &g.key)
            .collect()
    }
}

/// The keyword and integer values of `group_by` in a payload (an array's elements each), in order and
/// without repeats.
fn group_keys(payload: &Payload, group_by: &str) -> Vec<GroupKey> {
    let mut keys = Vec::new();
    let mut push = |v: &Value| {
        let key = match v {
            Value::String(s) => GroupKey::Keyword(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => GroupKey::Integer(i),
                None => return,
            },
            _ => return,
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    };
    path::for_each_value(payload, group_by, &mut |v| {
        match v {
            Value::Array(items) => items.iter().for_each(&mut push),
            v => push(v),
        }
        true
    });
    keys
}

fn values(keys: &[&GroupKey]) -> Vec<MatchValue> {
    keys.iter()
        .map(|k| match k {
            GroupKey::Integer(i) => MatchValue::Integer(*i),
            GroupKey::Keyword(s) => MatchValue::Keyword(s.clone()),
        })
        .collect()
}

/// A point with a value among `keys`.
fn in_groups(group_by: &str, keys: &[&GroupKey]) -> Condition {
    Condition::Field(FieldCondition::matching(
        group_by,
        Match::Any { any: values(keys) },
    ))
}

/// A point with a value outside `keys`: one whose array also names an open group still counts.
fn outside_groups(group_by: &str, keys: &[&GroupKey]) -> Condition {
    Condition::Field(FieldCondition::matching(
        group_by,
        Match::Except {
            except: values(keys),
        },
    ))
}

/// The round's filter: the request's, a `group_by` value, not an already placed point, and a
/// condition on the groups.
fn round_filter(
    base: Option<&Filter>,
    group_by: &str,
    placed: &HashSet<PointId>,
    must: Option<Condition>,
) -> Filter {
    let mut all = Vec::new();
    if let Some(f) = base {
        all.push(Condition::Filter(f.clone()));
    }
    all.extend(must);
    let mut none = vec![Condition::IsEmpty(IsEmptyCondition {
        is_empty: PayloadField {
            key: group_by.to_string(),
        },
    })];
    if !placed.is_empty() {
        let mut ids: Vec<PointId> = placed.iter().copied().collect();
        ids.sort_unstable();
        none.push(Condition::HasId(HasIdCondition { has_id: ids }));
    }
    Filter {
        must: (!all.is_empty()).then_some(OneOrMany::Many(all)),
        should: None,
        must_not: Some(OneOrMany::Many(none)),
        min_should: None,
    }
}

/// Runs a grouped query; see the module docs.
pub(crate) fn query_groups(
    config: &CollectionConfig,
    set: &SegmentSet,
    request: &GroupsRequest,
) -> Result<GroupsResponse> {
    let GroupsRequest {
        query,
        group_by,
        group_size,
        groups,
    } = request;
    if group_by.is_empty() {
        return Err(Error::InvalidInput(
            "`group_by` must name a payload key".into(),
        ));
    }
    if *group_size == 0 || *groups == 0 {
        return Err(Error::InvalidInput(
            "`group_size` and `limit` of a groups request must be at least 1".into(),
        ));
    }
    if query.offset != 0 {
        return Err(Error::InvalidInput(
            "a groups request has no `offset`".into(),
        ));
    }
    let order = Order::of(config, query)?;
    let mut agg = Aggregator {
        order,
        group_size: *group_size,
        groups: Vec::new(),
        index: HashMap::new(),
        placed: HashSet::new(),
    };
    let mut stages = Vec::new();
    let mut round = |agg: &mut Aggregator, filter: Filter| -> Result<usize> {
        let req = QueryRequest {
            filter: Some(filter),
            with_payload: WithPayload::All,
            with_vectors: WithVectors::None,
            ..query.clone()
        };
        let answer = planner::query(config, set, &req)?;
        stages.extend(answer.stages);
        for hit in &answer.hits {
            agg.add(group_by, hit);
        }
        Ok(answer.hits.len())
    };
    // Without prefetches a short round means no other point passes the filter; with them, leaving
    // out placed points lets the prefetches reach further.
    let exhausts = query.prefetch.is_empty();
    let mut done = false;
    for _ in 0..MAX_GROUP_ROUNDS {
        let full = agg.full_keys();
        let skip_full = (!full.is_empty()).then(|| outside_groups(group_by, &full));
        let filter = round_filter(query.filter.as_ref(), group_by, &agg.placed, skip_full);
        let found = round(&mut agg, filter)?;
        let best = agg.best(*groups);
        if best.len() >= *groups && best.iter().all(|g| agg.is_full(g)) {
            done = true;
            break;
        }
        if found == 0 || (exhausts && found < query.limit) {
            done = true;
            break;
        }
    }
    if !done {
        for _ in 0..MAX_FILLING_ROUNDS {
            let best = agg.best(*groups);
            let open: Vec<&GroupKey> = best
                .iter()
                .filter(|g| !agg.is_full(g))
                .map(|g| &g.key)
                .collect();
            if open.is_empty() {
                break;
            }
            let only_open = in_groups(group_by, &open);
            let filter = round_filter(
                query.filter.as_ref(),
                group_by,
                &agg.placed,
                Some(only_open),
            );
            if round(&mut agg, filter)? == 0 {
                break;
            }
        }
    }
    let mut best: Vec<PointGroup> = agg.best(*groups).into_iter().cloned().collect();
    hydrate(
        config,
        set,
        &mut best,
        &query.with_payload,
        &query.with_vectors,
    )?;
    Ok(GroupsResponse {
        groups: best,
        stages,
    })
}

/// Gives the hits the payload and vectors the request asked for (the rounds read whole payloads).
fn hydrate(
    config: &CollectionConfig,
    set: &SegmentSet,
    groups: &mut [PointGroup],
    with_payload: &WithPayload,
    with_vectors: &WithVectors,
) -> Result<()> {
    if *with_payload == WithPayload::None && *with_vectors == WithVectors::None {
        for hit in groups.iter_mut().flat_map(|g| g.hits.iter_mut()) {
            hit.payload = None;
        }
        return Ok(());
    }
    let mut ids: Vec<PointId> = groups
        .iter()
        .flat_map(|g| g.hits.iter().map(|h| h.id))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let records: HashMap<PointId, _> =
        read::retrieve(config, set, &ids, with_payload, with_vectors)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
    for hit in groups.iter_mut().flat_map(|g| g.hits.iter_mut()) {
        let record = records.get(&hit.id);
        hit.payload = record.and_then(|r| r.payload.clone());
        hit.vectors = record.and_then(|r| r.vectors.clone());
    }
    Ok(())
}
