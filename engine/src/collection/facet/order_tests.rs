//! `order_by` walked over the field indexes answers as reading every payload does, over generated
//! points spread over several sealed segments and the appendable one.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{ordered, ordered_by_payloads};
use crate::collection::field_index::tests::test_options;
use crate::collection::{Collection, Collections};
use crate::config::{CollectionConfig, Distance};
use crate::filter::{Datetime, Filter};
use crate::point::{
    NamedVectors, PointInsert, PointsSelector, Record, Vector, WithPayload, WithVectors,
};
use crate::query::{Direction, OrderBy, StartFrom};
use crate::PointId;

/// Datetimes with ties between forms (the same instant with and without an offset), one finer than
/// microseconds (which a datetime index leaves to the payload), and strings that are no datetime.
const TIMES: [&str; 9] = [
    "2024-01-02",
    "2024-01-02T10:00:00Z",
    "2024-01-02T12:00:00+02:00",
    "2023-12-31 23:59",
    "2024-01-02T10:00:00.000001Z",
    "1969-12-31T23:59:59.5Z",
    "2024-03-01T00:00:00",
    "later",
    "2024-13-01",
];
const FINER_TIME: &str = "2024-01-02T10:00:00.0000001Z";

fn scalar(rng: &mut StdRng, field: &str, finer_times: bool) -> Value {
    match (field, rng.random_range(0..10)) {
        (_, 0) => json!("x"),
        (_, 1) => json!(true),
        (_, 2) => Value::Null,
        ("i", 3) => json!(1.5),
        ("i", 4) => json!(4.0),
        ("i", _) => json!(rng.random_range(-4..5)),
        ("f", 3) => json!(-0.0),
        ("f", 4) => json!(rng.random_range(-3..4)),
        ("f", _) => json!([-1.5, 0.0, 0.25, 2.5, 1e300][rng.random_range(0..5)]),
        (_, 3) if finer_times => json!(FINER_TIME),
        (_, 4) => json!(rng.random_range(-3..4)),
        _ => json!(TIMES[rng.random_range(0..TIMES.len())]),
    }
}

/// A field's value: missing, one scalar, or an array of them (repeats included).
fn value(rng: &mut StdRng, field: &str, finer_times: bool) -> Option<Value> {
    match rng.random_range(0..6) {
        0 => None,
        1 | 2 => {
            let n = rng.random_range(0..4);
            let mut items: Vec<Value> = (0..n).map(|_| scalar(rng, field, finer_times)).collect();
            if n > 0 && rng.random_bool(0.3) {
                items.push(items[0].clone());
            }
            Some(Value::Array(items))
        }
        _ => Some(scalar(rng, field, finer_times)),
    }
}

fn payload(rng: &mut StdRng, finer_times: bool) -> serde_json::Map<String, Value> {
    let mut p = serde_json::Map::new();
    for field in ["i", "f", "d"] {
        if let Some(v) = value(rng, field, finer_times) {
            p.insert(field.into(), v);
        }
    }
    p.insert(
        "kw".into(),
        json!(["red", "blue", "green"][rng.random_range(0..3)]),
    );
    p
}

fn insert(id: u64, payload: serde_json::Map<String, Value>) -> PointInsert {
    let mut vectors = NamedVectors::new();
    vectors.insert(String::new(), Vector::Dense(vec![1.0, id as f32]));
    PointInsert {
        id: PointId::Num(id),
        vectors,
        payload: Some(payload),
    }
}

fn index(c: &Collection, field: &str, kind: &str) {
    c.create_payload_index(field, serde_json::from_value(json!(kind)).unwrap())
        .unwrap();
}

/// A collection of `sealed` sealed segments and an appendable one, with points upserted again,
/// deleted and moved between segments; the datetime index is created after the first seal, over a
/// segment sealed without it.
fn collection(
    dir: &std::path::Path,
    seed: u64,
    sealed: usize,
) -> (Collections, std::sync::Arc<Collection>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let cs = Collections::open(dir, test_options()).unwrap();
    let mut config = CollectionConfig::single(2, Distance::Dot);
    config.optimizer_config.default_segment_number = Some(16);
    let c = cs.create("t", config).unwrap();
    index(&c, "i", "integer");
    index(&c, "f", "float");
    index(&c, "kw", "keyword");
    for round in 0..=sealed {
        // Only some segments hold a datetime finer than microseconds.
        let finer = round % 2 == 1;
        let batch = (0..rng.random_range(20..60))
            .map(|_| {
                let id = rng.random_range(0..150);
                insert(id, payload(&mut rng, finer))
            })
            .collect();
        c.upsert(batch).unwrap();
        let gone: Vec<PointId> = (0..rng.random_range(0..8))
            .map(|_| PointId::Num(rng.random_range(0..150)))
            .collect();
        c.delete(PointsSelector::Ids(gone)).unwrap();
        if round < sealed {
            c.flush().unwrap();
        }
        if round == 0 {
            index(&c, "d", "datetime");
        }
    }
    let set = c.shared.snapshot();
    assert_eq!(set.sealed.len(), sealed, "segments merged");
    assert!(set.active.data.read().len() > 0);
    (cs, c)
}

fn start_from(rng: &mut StdRng, key: &str) -> Option<StartFrom> {
    match rng.random_range(0..4) {
        0 => None,
        1 if key == "d" => Some(StartFrom::Datetime(
            Datetime::parse(TIMES[rng.random_range(0..4)]).unwrap(),
        )),
        1 => Some(StartFrom::Integer(rng.random_range(-4..5))),
        2 if key == "d" => Some(StartFrom::Integer(
            Datetime::parse(TIMES[1]).unwrap().0.timestamp_micros(),
        )),
        _ => Some(StartFrom::Float(
            [-1.5, -0.0, 0.0, 0.1, 2.5, 1e300][rng.random_range(0..6)],
        )),
    }
}

fn filter(rng: &mut StdRng) -> Option<Filter> {
    let f = match rng.random_range(0..4) {
        0 => json!({"must": [{"key": "kw", "match": {"value": "red"}}]}),
        // Left to the payloads.
        1 => json!({"must_not": [{"key": "kw", "match": {"except": ["blue"]}}]}),
        2 => json!({"must": [{"key": "i", "range": {"gte": -1}}]}),
        _ => return None,
    };
    Some(serde_json::from_value(f).unwrap())
}

/// What a comparison reads of a record: its id and the value it was ordered by, exactly.
fn seen(records: &[Record]) -> Vec<(PointId, String)> {
    records
        .iter()
        .map(|r| (r.id, format!("{:?}", r.order_value)))
        .collect()
}

#[test]
fn index_walk_orders_as_reading_the_payloads() {
    let mut compared = 0;
    let mut nonempty = 0;
    for seed in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let (_cs, c) = collection(dir.path(), seed, 3);
        let config = c.shared.config();
        let set = c.shared.snapshot();
        let mut rng = StdRng::seed_from_u64(seed + 100);
        for _ in 0..150 {
            let key = ["i", "f", "d"][rng.random_range(0..3)];
            let order_by = OrderBy {
                key: key.into(),
                direction: if rng.random_bool(0.5) {
                    Direction::Desc
                } else {
                    Direction::Asc
                },
                start_from: start_from(&mut rng, key),
            };
            let filter = filter(&mut rng);
            let only: Option<HashSet<PointId>> = rng.random_bool(0.3).then(|| {
                (0..60)
                    .map(|_| PointId::Num(rng.random_range(0..150)))
                    .collect()
            });
            for limit in [1, 3, 10, 1000] {
                let args = (
                    &*config,
                    &*set,
                    filter.as_ref(),
                    &order_by,
                    limit,
                    only.as_ref(),
                    &WithPayload::None,
                    &WithVectors::None,
                );
                let want = seen(
                    &ordered_by_payloads(
                        args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
                    )
                    .unwrap(),
                );
                let got = seen(
                    &ordered(
                        args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
                    )
                    .unwrap(),
                );
                assert_eq!(
                    got, want,
                    "seed {seed} {order_by:?} {filter:?} limit {limit}"
                );
                compared += 1;
                nonempty += usize::from(want.len() >= limit.min(3));
            }
        }
    }
    // The generated cases mostly have points to order.
    assert!(nonempty * 2 > compared, "{nonempty} of {compared}");
}

#[test]
fn index_walk_parses_no_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (_cs, c) = collection(dir.path(), 7, 2);
    let config = c.shared.config();
    let set = c.shared.snapshot();
    let reads = || {
        let sealed: usize = set
            .sealed
            .iter()
            .map(|s| s.payload_reads.load(Ordering::Relaxed))
            .sum();
        sealed + set.active.data.read().payload_reads.load(Ordering::Relaxed)
    };
    let indexed: Filter =
        serde_json::from_value(json!({"must": [{"key": "kw", "match": {"value": "red"}}]}))
            .unwrap();
    let before = reads();
    for key in ["i", "f"] {
        for direction in [Direction::Asc, Direction::Desc] {
            for filter in [None, Some(&indexed)] {
                let order_by = OrderBy {
                    key: key.into(),
                    direction,
                    start_from: None,
                };
                let got = ordered(
                    &config,
                    &set,
                    filter,
                    &order_by,
                    5,
                    None,
                    &WithPayload::None,
                    &WithVectors::None,
                )
                .unwrap();
                assert_eq!(got.len(), 5);
                assert_eq!(reads(), before, "{key} {direction:?} {filter:?}");
            }
        }
    }
    // The payload path does parse them (the counters count).
    let order_by = OrderBy {
        key: "i".into(),
        direction: Direction::Asc,
        start_from: None,
    };
    let args = (&WithPayload::None, &WithVectors::None);
    ordered_by_payloads(&config, &set, None, &order_by, 5, None, args.0, args.1).unwrap();
    assert!(reads() > before);
}

/// A segment whose in-memory indexes lack the field (a frozen segment sealed while the index was
/// created) is ordered from its payloads, merged with the other segments' index walks.
#[test]
fn a_segment_without_the_index_is_ordered_from_its_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let (_cs, c) = collection(dir.path(), 11, 2);
    let config = c.shared.config();
    let set = c.shared.snapshot();
    // Keep only the keyword index in the appendable segment, as one frozen before the others.
    let keep: crate::payload_schema::PayloadSchema = set
        .schema
        .iter()
        .filter(|(field, _)| *field == "kw")
        .map(|(f, s)| (f.clone(), s.clone()))
        .collect();
    set.active
        .data
        .write()
        .field_indexes
        .replace(&keep, Vec::new());
    let active_reads = || set.active.data.read().payload_reads.load(Ordering::Relaxed);
    let sealed_reads = || -> usize {
        set.sealed
            .iter()
            .map(|s| s.payload_reads.load(Ordering::Relaxed))
            .sum()
    };
    for key in ["i", "f", "d"] {
        for direction in [Direction::Asc, Direction::Desc] {
            let order_by = OrderBy {
                key: key.into(),
                direction,
                start_from: None,
            };
            for limit in [3, 1000] {
                let (active, sealed) = (active_reads(), sealed_reads());
                let args = (&WithPayload::None, &WithVectors::None);
                let got = seen(
                    &ordered(&config, &set, None, &order_by, limit, None, args.0, args.1).unwrap(),
                );
                assert!(
                    active_reads() > active,
                    "{key}: the segment read its payloads"
                );
                // (The datetime field also reads payloads in sealed segments: one was sealed
                // before its index, some hold datetimes finer than the index keeps.)
                if key != "d" {
                    assert_eq!(
                        sealed_reads(),
                        sealed,
                        "{key}: sealed segments walk their index"
                    );
                }
                let want = seen(
                    &ordered_by_payloads(
                        &config, &set, None, &order_by, limit, None, args.0, args.1,
                    )
                    .unwrap(),
                );
                assert_eq!(got, want, "{key} {direction:?} limit {limit}");
                assert!(!got.is_empty());
            }
        }
    }
}
