//! Value graphs: Qdrant's payload-aware HNSW links (`hnsw_config.payload_m`), kept as graphs of their
//! own.
//!
//! A filtered walk over the main graph passes through the points the filter rejects, so the fewer
//! points pass, the more of the graph a query visits per hit, and with `m: 0` (Qdrant's setting for
//! multitenancy) there is no main graph at all. Qdrant therefore builds, for every value of an indexed
//! field that holds at least `full_scan_threshold` points, extra links among that value's points
//! (`payload_m` of them per node) and merges them into the main graph. Quiver builds the same links as
//! a separate graph per value (one HNSW graph over the value's rows, `payload_m` links per node), and a
//! search whose filter requires the value (`{"key": k, "match": {"value": v}}` among its `must`) walks
//! that graph instead of the main one: every node it visits holds the value, so the walk costs what an
//! unfiltered search over just those points costs. Filters that do not pin one value walk the main
//! graph as before.
//!
//! A sealed segment's payloads never change (a payload update moves the point to the appendable
//! segment and tombstones it here), so a value graph stays complete for its segment: every point of
//! the segment whose payload matches the value is one of its nodes. The walk still checks the whole
//! filter and the tombstones at every node.
//!
//! Files, per dense vector `i` of a segment: `value-graphs-{i}.json` (the table: field, value and rows
//! of every graph, listed as `value-graphs:{vector}`) and `value-graph-{i}-{j}.hnsw` (graph `j`, in the
//! main graph's format with node `k` standing for row `rows[k]`, listed as `value-graph:{j}:{vector}`).
//! Both are written atomically like every segment file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use quiver_storage::segment::{segment_dir, segment_file_path};
use quiver_storage::{fs as qfs, FileEntry, SegmentFile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::field_index::for_each_scalar;
use super::payload;
use crate::config::Distance;
use crate::filter::{Condition, FieldCondition, Filter, Match, MatchValue, OneOrMany};
use crate::index::hnsw::{build_graph_of, write_graph, GraphView, HnswBuildParams};
use crate::index::VectorSlab;
use crate::payload_schema::{PayloadFieldSchema, PayloadSchema, PayloadSchemaType};
use crate::point::Payload;
use crate::Result;

/// Attached name of a vector's table: this prefix, then the vector's name.
pub(crate) const TABLE_ATTACHED_PREFIX: &str = "value-graphs:";
/// Attached name of one graph: this prefix, the graph's number in the table, `:`, the vector's name.
pub(crate) const GRAPH_ATTACHED_PREFIX: &str = "value-graph:";

/// The points of one value of one indexed field, as rows of a dense vector, ascending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Block {
    pub field: String,
    pub value: MatchValue,
    pub rows: Vec<u32>,
}

/// A value graph of a sealed segment.
pub(crate) struct ValueGraph {
    pub block: Block,
    pub graph: GraphView,
}

/// The table file.
#[derive(Serialize, Deserialize)]
struct Table {
    blocks: Vec<Block>,
}

/// What an attached file of this module is: a vector's table, or graph `j` of a vector.
pub(crate) enum Attached<'a> {
    Table(&'a str),
    Graph(usize, &'a str),
}

/// Parses an attached name written by [`write`].
pub(crate) fn parse_attached(name: &str) -> Option<Attached<'_>> {
    if let Some(vector) = name.strip_prefix(TABLE_ATTACHED_PREFIX) {
        return Some(Attached::Table(vector));
    }
    let (number, vector) = name.strip_prefix(GRAPH_ATTACHED_PREFIX)?.split_once(':')?;
    Some(Attached::Graph(number.parse().ok()?, vector))
}

/// The value a payload scalar gives a field indexed as `schema`, when the index kind has blocks:
/// keyword and uuid strings, integers (with `lookup`, Qdrant's map index), bools.
fn block_value(schema: &PayloadFieldSchema, v: &Value) -> Option<MatchValue> {
    match (schema.data_type(), v) {
        (PayloadSchemaType::Keyword | PayloadSchemaType::Uuid, Value::String(s)) => {
            Some(MatchValue::Keyword(s.clone()))
        }
        (PayloadSchemaType::Integer, Value::Number(n)) if schema.integer_lookup() => {
            n.as_i64().map(MatchValue::Integer)
        }
        (PayloadSchemaType::Bool, Value::Bool(b)) => Some(MatchValue::Bool(*b)),
        _ => None,
    }
}

/// The condition a block's points pass, and a filter must require to use the block's graph.
fn pin(field: &str, value: &MatchValue) -> FieldCondition {
    FieldCondition {
        key: field.to_owned(),
        match_: Some(Match::Value {
            value: value.clone(),
        }),
        ..FieldCondition::default()
    }
}

/// The blocks of a segment being written: for each field of `schema` whose index kind has blocks,
/// each value that at least `min_points` points (of `payloads`, by offset) hold and that has a row in
/// the vector (`point_to_row`). A block is every point whose payload passes `{"key": field, "match":
/// {"value": value}}`, decided by the filter's own matching, so a filter requiring the value never
/// passes a point outside it. `skip_rows`: a block of exactly this many rows is left out (it would
/// repeat the main graph).
pub(crate) fn blocks(
    schema: &PayloadSchema,
    payloads: &[Vec<u8>],
    point_to_row: &dyn Fn(u32) -> Option<u32>,
    min_points: usize,
    skip_rows: Option<usize>,
) -> Vec<Block> {
    let fields: Vec<(&str, &PayloadFieldSchema)> = schema
        .iter()
        .map(|(f, s)| (f.as_str(), s))
        .filter(|(_, s)| {
            matches!(
                s.data_type(),
                PayloadSchemaType::Keyword
                    | PayloadSchemaType::Uuid
                    | PayloadSchemaType::Integer
                    | PayloadSchemaType::Bool
            )
        })
        .collect();
    if fields.is_empty() || payloads.is_empty() {
        return Vec::new();
    }
    let min_points = min_points.max(1);
    // First pass: how many points hold each value (a point counts once per value).
    let mut counts: Vec<HashMap<MatchValue, usize>> = vec![HashMap::new(); fields.len()];
    let mut seen: Vec<MatchValue> = Vec::new();
    for bytes in payloads {
        let p: Payload = payload::parse(bytes);
        for ((field, s), counts) in fields.iter().zip(&mut counts) {
            seen.clear();
            for_each_scalar(&p, field, &mut |v| {
                if let Some(value) = block_value(s, v) {
                    if !seen.contains(&value) {
                        seen.push(value);
                    }
                }
            });
            for value in seen.drain(..) {
                *counts.entry(value).or_default() += 1;
            }
        }
    }
    let mut wanted: Vec<(FieldCondition, Vec<u32>)> = Vec::new();
    for ((field, _), counts) in fields.iter().zip(counts) {
        // Sorted for a reproducible file.
        let values: BTreeMap<String, MatchValue> = counts
            .into_iter()
            .filter(|&(_, n)| n >= min_points)
            .map(|(v, _)| (serde_json::to_string(&v).expect("a value serialises"), v))
            .collect();
        wanted.extend(values.into_values().map(|v| (pin(field, &v), Vec::new())));
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    // Second pass: the rows whose payload passes each block's condition.
    for (off, bytes) in payloads.iter().enumerate() {
        let Some(row) = point_to_row(off as u32) else {
            continue;
        };
        let p: Payload = payload::parse(bytes);
        for (condition, rows) in &mut wanted {
            if condition.matches(&p) {
                rows.push(row);
            }
        }
    }
    wanted
        .into_iter()
        .filter(|(_, rows)| rows.len() >= min_points && Some(rows.len()) != skip_rows)
        .map(|(c, mut rows)| {
            rows.sort_unstable();
            let Some(Match::Value { value }) = c.match_ else {
                unreachable!("built by pin")
            };
            Block {
                field: c.key,
                value,
                rows,
            }
        })
        .collect()
}

/// Builds the graph of every block over `slab` (`m` = `payload_m`) and writes them with their table
/// as vector number `i` (named `vector`) of segment `id`; returns the files to list. One graph is in
/// memory at a time.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_and_write(
    dir: &Path,
    id: u64,
    i: usize,
    vector: &str,
    blocks: Vec<Block>,
    slab: VectorSlab<'_>,
    distance: Distance,
    params: &HnswBuildParams,
    stop: &AtomicBool,
) -> Result<Vec<FileEntry>> {
    let mut out = Vec::with_capacity(blocks.len() + 1);
    for (j, block) in blocks.iter().enumerate() {
        let graph = build_graph_of(slab, Some(&block.rows), distance, params, stop)?;
        let file_name = format!("value-graph-{i}-{j}.hnsw");
        let written = write_graph(&segment_dir(dir, id).join(&file_name), &graph)?;
        out.push(FileEntry::new(
            SegmentFile::Attached {
                name: format!("{GRAPH_ATTACHED_PREFIX}{j}:{vector}"),
            },
            segment_file_path(id, &file_name),
            written,
        ));
        tracing::debug!(
            segment = id,
            vector,
            field = %block.field,
            points = block.rows.len(),
            "value graph built"
        );
    }
    let json = serde_json::to_vec(&Table { blocks }).expect("a table serialises");
    let file_name = format!("value-graphs-{i}.json");
    let written = qfs::atomic_write(&segment_dir(dir, id).join(&file_name), &json)?;
    out.push(FileEntry::new(
        SegmentFile::Attached {
            name: format!("{TABLE_ATTACHED_PREFIX}{vector}"),
        },
        segment_file_path(id, &file_name),
        written,
    ));
    Ok(out)
}

/// Reads a table written by [`build_and_write`].
pub(crate) fn read_table(path: &Path) -> Result<Vec<Block>> {
    let bytes = std::fs::read(path).map_err(|e| quiver_storage::Error::io(path, e))?;
    let table: Table = serde_json::from_slice(&bytes).map_err(|e| corrupt(path, e.to_string()))?;
    Ok(table.blocks)
}

fn corrupt(path: &Path, reason: String) -> quiver_storage::Error {
    quiver_storage::Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("value graphs: {reason}"),
    }
}

/// Pairs a table with its opened graphs, checking that they agree with each other and with the
/// vector's `num_rows` rows.
pub(crate) fn assemble(
    path: &Path,
    blocks: Vec<Block>,
    mut graphs: BTreeMap<usize, GraphView>,
    num_rows: usize,
) -> Result<Vec<ValueGraph>> {
    if graphs.len() != blocks.len() || graphs.keys().any(|&j| j >= blocks.len()) {
        return Err(corrupt(
            path,
            format!(
                "the table lists {} graphs, the segment {}",
                blocks.len(),
                graphs.len()
            ),
        )
        .into());
    }
    blocks
        .into_iter()
        .enumerate()
        .map(|(j, block)| {
            let graph = graphs.remove(&j).expect("checked above");
            let ascending = block.rows.windows(2).all(|w| w[0] < w[1]);
            let in_range = block.rows.last().is_none_or(|&r| (r as usize) < num_rows);
            if graph.len() != block.rows.len() || !ascending || !in_range {
                return Err(corrupt(
                    path,
                    format!(
                        "graph {j} ({} = {:?}) does not match its {} rows",
                        block.field,
                        block.value,
                        block.rows.len()
                    ),
                )
                .into());
            }
            Ok(ValueGraph { block, graph })
        })
        .collect()
}

/// The value graph among `graphs` that `filter` pins: one whose field and value a condition of the
/// filter's `must` requires (`match` with that one value, or `any` of just it), the smallest when
/// several are pinned.
pub(crate) fn pinned<'g>(graphs: &'g [ValueGraph], filter: &Filter) -> Option<&'g ValueGraph> {
    if graphs.is_empty() {
        return None;
    }
    let must: &[Condition] = match &filter.must {
        Some(OneOrMany::One(c)) => std::slice::from_ref(c),
        Some(OneOrMany::Many(cs)) => cs,
        None => return None,
    };
    must.iter()
        .filter_map(|c| match c {
            Condition::Field(f) => required_value(f),
            _ => None,
        })
        .filter_map(|(field, value)| {
            graphs
                .iter()
                .find(|g| g.block.field == field && g.block.value == value)
        })
        .min_by_key(|g| g.block.rows.len())
}

/// The one value a field condition requires, when it tests nothing else (a condition's tests are
/// ORed, so a `match` beside a `range` requires neither).
fn required_value(f: &FieldCondition) -> Option<(&str, MatchValue)> {
    let value = match f.match_.as_ref()? {
        Match::Value { value } => value.clone(),
        Match::Any { any } if any.len() == 1 => any[0].clone(),
        _ => return None,
    };
    let only_match = FieldCondition {
        key: f.key.clone(),
        match_: f.match_.clone(),
        ..FieldCondition::default()
    };
    (only_match == *f).then_some((f.key.as_str(), value))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(fields: Value) -> PayloadSchema {
        serde_json::from_value(fields).unwrap()
    }

    fn encoded(payloads: &[Value]) -> Vec<Vec<u8>> {
        payloads
            .iter()
            .map(|p| serde_json::to_vec(p).unwrap())
            .collect()
    }

    #[test]
    fn blocks_hold_every_point_that_matches_the_value() {
        let s = schema(json!({"tenant": "keyword", "n": "integer", "flag": "bool", "t": "text"}));
        let payloads = encoded(&[
            json!({"tenant": "a", "n": 1, "flag": true, "t": "a"}),
            json!({"tenant": ["a", "a", "b"], "n": 1.5, "flag": false}),
            json!({"tenant": "b", "n": 1, "flag": true}),
            json!({"tenant": "a", "n": [2, 1]}),
            json!({"other": "a"}),
        ]);
        let all = blocks(&s, &payloads, &|p| Some(p), 2, None);
        let found: Vec<(String, MatchValue, Vec<u32>)> = all
            .into_iter()
            .map(|b| (b.field, b.value, b.rows))
            .collect();
        assert_eq!(
            found,
            vec![
                ("flag".into(), MatchValue::Bool(true), vec![0, 2]),
                ("n".into(), MatchValue::Integer(1), vec![0, 2, 3]),
                (
                    "tenant".into(),
                    MatchValue::Keyword("a".into()),
                    vec![0, 1, 3]
                ),
                ("tenant".into(), MatchValue::Keyword("b".into()), vec![1, 2]),
            ]
        );
        // Rows, not points: a point without the vector is left out, and with it a block that falls
        // under the count.
        let rows = |p: u32| (p != 0).then(|| p - 1);
        let shifted: Vec<(String, Vec<u32>)> = blocks(&s, &payloads, &rows, 2, None)
            .into_iter()
            .map(|b| (b.field, b.rows))
            .collect();
        assert_eq!(
            shifted,
            vec![
                ("n".into(), vec![1, 2]),
                ("tenant".into(), vec![0, 2]),
                ("tenant".into(), vec![0, 1]),
            ]
        );
        // A block of every row is skipped when the main graph holds them already.
        let fields: Vec<String> = blocks(&s, &payloads, &|p| Some(p), 2, Some(3))
            .into_iter()
            .map(|b| b.field)
            .collect();
        assert_eq!(fields, vec!["flag", "tenant"]);
    }

    #[test]
    fn only_a_must_condition_on_one_value_pins_a_graph() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.hnsw");
        let slab = VectorSlab { data: &[], dim: 1 };
        let params = HnswBuildParams::default();
        let empty = build_graph_of(slab, None, Distance::Dot, &params, &AtomicBool::new(false));
        write_graph(&path, &empty.unwrap()).unwrap();
        let g = |field: &str, value: MatchValue, rows: usize| ValueGraph {
            block: Block {
                field: field.into(),
                value,
                rows: (0..rows as u32).collect(),
            },
            graph: GraphView::open(&path).unwrap(),
        };
        let graphs = vec![
            g("tenant", MatchValue::Keyword("a".into()), 10),
            g("color", MatchValue::Keyword("red".into()), 5),
        ];
        let f = |v: Value| -> Filter { serde_json::from_value(v).unwrap() };
        let pick = |v: Value| pinned(&graphs, &f(v)).map(|g| g.block.field.clone());
        assert_eq!(
            pick(json!({"must": [{"key": "tenant", "match": {"value": "a"}}]})),
            Some("tenant".into())
        );
        assert_eq!(
            pick(json!({"must": {"key": "tenant", "match": {"any": ["a"]}}})),
            Some("tenant".into())
        );
        // The smallest of two pinned graphs.
        assert_eq!(
            pick(json!({"must": [
                {"key": "tenant", "match": {"value": "a"}},
                {"key": "color", "match": {"value": "red"}}
            ]})),
            Some("color".into())
        );
        for unpinned in [
            json!({"should": [{"key": "tenant", "match": {"value": "a"}}]}),
            json!({"must": [{"key": "tenant", "match": {"any": ["a", "b"]}}]}),
            json!({"must": [{"key": "tenant", "match": {"value": "b"}}]}),
            json!({"must": [{"key": "tenant", "match": {"value": "a"}, "range": {"gt": 1}}]}),
            json!({"must_not": [{"key": "tenant", "match": {"value": "a"}}]}),
        ] {
            assert_eq!(pick(unpinned.clone()), None, "{unpinned}");
        }
    }
}
