//! Vector updates and batch updates: what they change, what a failed one leaves, and that the state
//! they leave comes back through reopen (WAL replay), seal and vacuum.

use quiver_engine::config::Distance;
use quiver_engine::point::{
    PayloadOp, PointVectors, Record, ScrollRequest, UpdateOperation, WithPayload, WithVectors,
};
use quiver_engine::{
    Collection, Error, Filter, NamedVectors, PointId, PointsSelector, SearchRequest, Vector,
};
use serde_json::json;

use crate::common::*;

fn everything(c: &Collection) -> Vec<Record> {
    c.scroll(&ScrollRequest {
        filter: None,
        offset: None,
        limit: 1000,
        with_payload: WithPayload::All,
        with_vectors: WithVectors::All,
    })
    .unwrap()
    .points
}

fn k_is(v: u64) -> Filter {
    serde_json::from_value(json!({"must": [{"key": "k", "match": {"value": v}}]})).unwrap()
}

fn named(pairs: &[(&str, Vector)]) -> NamedVectors {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

/// Ids a search on the unnamed vector finds (all of them).
fn found(c: &Collection) -> Vec<u64> {
    let mut found = ids(c
        .search(&SearchRequest::dense(vec![1.0, 1.0], 100))
        .unwrap()
        .into_iter()
        .map(|h| h.id));
    found.sort_unstable();
    found
}

#[test]
fn vector_and_batch_updates_survive_reopen_seal_and_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with_multi(2, Distance::Dot);
    config.optimizer_config.segment_max_points = 5;
    let want = {
        let cs = open(dir.path());
        let c = create(&cs, "u", config);
        let points = (0..12u64)
            .map(|i| {
                let mut p = dense(i, vec![i as f32, 1.0], json!({"k": i}));
                p.vectors
                    .insert("colbert".into(), Vector::Multi(vec![vec![1.0, i as f32]]));
                p
            })
            .collect();
        c.upsert(points).unwrap();
        c.flush().unwrap();

        c.update_vectors(
            vec![PointVectors {
                id: PointId::Num(0),
                vectors: named(&[("", Vector::Dense(vec![9.0, 9.0]))]),
            }],
            None,
        )
        .unwrap();
        c.delete_vectors(PointsSelector::Ids(vec![PointId::Num(1)]), vec!["".into()])
            .unwrap();
        c.update_batch(vec![
            UpdateOperation::Upsert {
                points: vec![dense(20, vec![2.0, 0.0], json!({"k": 20}))],
                conditions: Default::default(),
            },
            UpdateOperation::Payload {
                selector: PointsSelector::Filter(k_is(20)),
                op: PayloadOp::Set {
                    payload: obj(json!({"t": 1})),
                    key: None,
                },
            },
            UpdateOperation::UpdateVectors {
                points: vec![PointVectors {
                    id: PointId::Num(20),
                    vectors: named(&[("colbert", Vector::Multi(vec![vec![0.5, 0.5]]))]),
                }],
                update_filter: None,
            },
            UpdateOperation::DeleteVectors {
                selector: PointsSelector::Filter(k_is(3)),
                names: vec!["colbert".into()],
            },
            UpdateOperation::Delete(PointsSelector::Ids(vec![PointId::Num(4)])),
        ])
        .unwrap();

        let state = everything(&c);
        let by_id = |id: u64| state.iter().find(|r| r.id == PointId::Num(id)).unwrap();
        let v = |id: u64| by_id(id).vectors.clone().unwrap();
        assert_eq!(v(0)[""], Vector::Dense(vec![9.0, 9.0]));
        assert_eq!(v(0)["colbert"], Vector::Multi(vec![vec![1.0, 0.0]]));
        assert!(!v(1).contains_key(""));
        assert!(!v(3).contains_key("colbert"));
        assert_eq!(v(20)["colbert"], Vector::Multi(vec![vec![0.5, 0.5]]));
        assert_eq!(by_id(20).payload, Some(obj(json!({"k": 20, "t": 1}))));
        assert_eq!(state.len(), 12);
        let mut with_dense: Vec<u64> = (0..12).filter(|&i| i != 1 && i != 4).collect();
        with_dense.push(20);
        assert_eq!(found(&c), with_dense);

        // Failures write nothing.
        let missing = c.update_vectors(
            vec![PointVectors {
                id: PointId::Num(99),
                vectors: named(&[("", Vector::Dense(vec![1.0, 1.0]))]),
            }],
            None,
        );
        assert!(matches!(missing, Err(Error::NoSuchPoint(PointId::Num(99)))));
        let bad = c.update_batch(vec![
            UpdateOperation::Delete(PointsSelector::Ids(vec![PointId::Num(5)])),
            UpdateOperation::DeleteVectors {
                selector: PointsSelector::Ids(vec![PointId::Num(5)]),
                names: vec!["colbert".into()],
            },
        ]);
        match bad {
            Err(Error::InOperation {
                index: 1,
                kind: "delete_vectors",
                source,
            }) => assert!(matches!(*source, Error::NoSuchPoint(PointId::Num(5)))),
            other => panic!("{other:?}"),
        }
        let bad = c.update_batch(vec![UpdateOperation::DeleteVectors {
            selector: PointsSelector::Ids(vec![PointId::Num(5)]),
            names: vec!["nope".into()],
        }]);
        assert!(matches!(bad, Err(Error::InOperation { index: 0, .. })));
        assert_eq!(everything(&c), state);
        state
    };
    let cs = open(dir.path());
    let c = cs.get("u").unwrap();
    assert_eq!(everything(&c), want);
    c.flush().unwrap();
    c.vacuum().unwrap();
    assert_eq!(everything(&c), want);
    drop(c);
    drop(cs);
    let cs = open(dir.path());
    assert_eq!(everything(&cs.get("u").unwrap()), want);
}
