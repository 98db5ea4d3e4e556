//! Point operations against a model, across WAL replay, seals, vacuums and reopens.

use std::collections::BTreeMap;

use quiver_engine::config::Distance;
use quiver_engine::point::{
    Payload, PayloadOp, PointsSelector, ScrollRequest, Vector, WithPayload, WithVectors,
};
use quiver_engine::{Collection, PointId};
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::*;

type Model = BTreeMap<u64, (Vec<f32>, Payload)>;

fn scroll_all(c: &Collection, page: usize) -> Vec<(u64, Vec<f32>, Payload)> {
    let mut out = Vec::new();
    let mut offset = None;
    loop {
        let r = c
            .scroll(&ScrollRequest {
                filter: None,
                offset,
                limit: page,
                with_payload: WithPayload::All,
                with_vectors: WithVectors::All,
            })
            .unwrap();
        for rec in r.points {
            let v = vectors_of(rec.vectors.as_ref().unwrap()).to_vec();
            out.push((ids([rec.id])[0], v, rec.payload.unwrap()));
        }
        match r.next_page_offset {
            Some(n) => offset = Some(n),
            None => return out,
        }
    }
}

fn check(c: &Collection, model: &Model) {
    let got = scroll_all(c, 7);
    let want: Vec<(u64, Vec<f32>, Payload)> = model
        .iter()
        .map(|(id, (v, p))| (*id, v.clone(), p.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(c.count(None).unwrap(), model.len());
    assert_eq!(c.info().points_count, model.len());
    let probe: Vec<PointId> = (0..40).map(PointId::Num).collect();
    let rec = c
        .retrieve(&probe, &WithPayload::All, &WithVectors::None)
        .unwrap();
    assert_eq!(
        ids(rec.iter().map(|r| r.id)),
        model
            .keys()
            .copied()
            .filter(|k| *k < 40)
            .collect::<Vec<_>>()
    );
}

#[test]
fn basic_operations() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "c", small_config(4, Distance::Dot, 1000, 100_000));
    let pts = (0..10)
        .map(|i| dense(i, vec![i as f32, 0.0, 0.0, 1.0], json!({"i": i})))
        .collect();
    c.upsert(pts).unwrap();
    assert_eq!(c.count(None).unwrap(), 10);

    let r = c
        .retrieve(
            &[PointId::Num(3), PointId::Num(99), PointId::Num(1)],
            &WithPayload::Include(vec!["i".into()]),
            &WithVectors::All,
        )
        .unwrap();
    assert_eq!(ids(r.iter().map(|r| r.id)), vec![3, 1]);
    assert_eq!(r[0].payload.as_ref().unwrap()["i"], json!(3));
    assert_eq!(
        vectors_of(r[0].vectors.as_ref().unwrap()),
        &[3.0, 0.0, 0.0, 1.0]
    );

    let page = |offset: Option<u64>| {
        c.scroll(&ScrollRequest {
            filter: None,
            offset: offset.map(PointId::Num),
            limit: 4,
            with_payload: WithPayload::None,
            with_vectors: WithVectors::None,
        })
        .unwrap()
    };
    let p1 = page(None);
    assert_eq!(ids(p1.points.iter().map(|r| r.id)), vec![0, 1, 2, 3]);
    assert_eq!(p1.next_page_offset, Some(PointId::Num(4)));
    let p3 = page(Some(8));
    assert_eq!(ids(p3.points.iter().map(|r| r.id)), vec![8, 9]);
    assert_eq!(p3.next_page_offset, None);
    assert!(p1.points[0].payload.is_none() && p1.points[0].vectors.is_none());

    // Replacing an id returns the new vector; deleting hides it.
    c.upsert(vec![dense(3, vec![30.0, 0.0, 0.0, 0.0], json!({}))])
        .unwrap();
    c.delete(PointsSelector::Ids(vec![
        PointId::Num(1),
        PointId::Num(2),
        PointId::Num(77),
    ]))
    .unwrap();
    assert_eq!(c.count(None).unwrap(), 8);
    let r = c
        .retrieve(
            &[PointId::Num(1), PointId::Num(3)],
            &WithPayload::All,
            &WithVectors::All,
        )
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        vectors_of(r[0].vectors.as_ref().unwrap()),
        &[30.0, 0.0, 0.0, 0.0]
    );

    // Payload operations.
    c.update_payload(
        PointsSelector::Ids(vec![PointId::Num(4)]),
        PayloadOp::Set {
            payload: obj(json!({"x": 1})),
            key: None,
        },
    )
    .unwrap();
    c.update_payload(
        PointsSelector::Ids(vec![PointId::Num(5)]),
        PayloadOp::Overwrite(obj(json!({"y": 2}))),
    )
    .unwrap();
    c.update_payload(
        PointsSelector::Ids(vec![PointId::Num(6)]),
        PayloadOp::DeleteKeys(vec!["i".into()]),
    )
    .unwrap();
    c.update_payload(PointsSelector::Ids(vec![PointId::Num(7)]), PayloadOp::Clear)
        .unwrap();
    let r = c
        .retrieve(
            &[4, 5, 6, 7].map(PointId::Num),
            &WithPayload::All,
            &WithVectors::None,
        )
        .unwrap();
    let p: Vec<_> = r
        .iter()
        .map(|r| serde_json::Value::Object(r.payload.clone().unwrap()))
        .collect();
    assert_eq!(
        p,
        vec![
            json!({"i": 4, "x": 1}),
            json!({"y": 2}),
            json!({}),
            json!({})
        ]
    );

    // Validation: nothing applied when one point is bad.
    let err = c
        .upsert(vec![
            dense(100, vec![1.0; 4], json!({})),
            dense(101, vec![1.0; 3], json!({})),
        ])
        .unwrap_err();
    assert!(
        matches!(
            err,
            quiver_engine::Error::DimensionMismatch {
                expected: 4,
                got: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = c
        .upsert(vec![dense(102, vec![f32::NAN, 0.0, 0.0, 0.0], json!({}))])
        .unwrap_err();
    assert!(matches!(err, quiver_engine::Error::InvalidInput(_)));
    let mut bad = dense(103, vec![1.0; 4], json!({}));
    bad.vectors.insert("nope".into(), Vector::Dense(vec![1.0]));
    assert!(matches!(
        c.upsert(vec![bad]).unwrap_err(),
        quiver_engine::Error::VectorNameNotFound(_)
    ));
    assert_eq!(c.count(None).unwrap(), 8);
}

#[test]
fn collections_lifecycle_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    for bad in ["", ".x", "a/b", "sp ace"] {
        assert!(matches!(
            cs.create(bad, small_config(2, Distance::Dot, 10, 10)),
            Err(quiver_engine::Error::InvalidInput(_))
        ));
    }
    create(&cs, "a", small_config(2, Distance::Dot, 10, 10));
    create(&cs, "b.v1", small_config(2, Distance::Euclid, 10, 10));
    assert!(matches!(
        cs.create("a", small_config(2, Distance::Dot, 10, 10)),
        Err(quiver_engine::Error::CollectionExists(_))
    ));
    assert_eq!(cs.list(), vec!["a".to_string(), "b.v1".to_string()]);
    assert!(cs.delete("a").unwrap());
    assert!(!cs.delete("a").unwrap());
    assert!(matches!(
        cs.get("a"),
        Err(quiver_engine::Error::CollectionNotFound(_))
    ));
    cs.close().unwrap();
    drop(cs);
    let cs = open(dir.path());
    assert_eq!(cs.list(), vec!["b.v1".to_string()]);
    assert_eq!(
        cs.get("b.v1").unwrap().config().vectors[""].distance,
        Distance::Euclid
    );
    assert!(cs.failed().is_empty());
}

/// Random operations checked against a model, with seals (explicit and background), vacuums and reopens
/// in between. Vectors carry their id and a version so stale rows are detectable.
#[test]
fn random_operations_match_model_across_reopen_seal_and_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(3, Distance::Dot, 40, 100_000);
    config.optimizer_config.deleted_threshold = 0.1;
    let mut cs = open(dir.path());
    let mut c = create(&cs, "m", config);
    let mut model = Model::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for step in 0..600u32 {
        match rng.random_range(0..100) {
            0..=49 => {
                let n = rng.random_range(1..6);
                let mut pts = Vec::new();
                for _ in 0..n {
                    let id = rng.random_range(0..120u64);
                    let v = vec![id as f32, step as f32, 1.0];
                    let p = obj(json!({"id": id, "step": step}));
                    model.insert(id, (v.clone(), p.clone()));
                    let mut pt = dense(id, v, json!({}));
                    pt.payload = Some(p);
                    pts.push(pt);
                }
                // Duplicates within a batch: the last one wins, as in the model.
                c.upsert(pts).unwrap();
            }
            50..=69 => {
                let del: Vec<u64> = (0..rng.random_range(1..8))
                    .map(|_| rng.random_range(0..120))
                    .collect();
                for d in &del {
                    model.remove(d);
                }
                c.delete(PointsSelector::Ids(
                    del.into_iter().map(PointId::Num).collect(),
                ))
                .unwrap();
            }
            70..=84 => {
                let id = rng.random_range(0..120u64);
                let op = match rng.random_range(0..4) {
                    0 => PayloadOp::Set {
                        payload: obj(json!({"tag": step})),
                        key: None,
                    },
                    1 => PayloadOp::Overwrite(obj(json!({"over": step}))),
                    2 => PayloadOp::DeleteKeys(vec!["step".into()]),
                    _ => PayloadOp::Clear,
                };
                if let Some((_, p)) = model.get_mut(&id) {
                    match &op {
                        PayloadOp::Set { payload, .. } => p.extend(payload.clone()),
                        PayloadOp::Overwrite(o) => *p = o.clone(),
                        PayloadOp::DeleteKeys(k) => {
                            p.remove(&k[0]);
                        }
                        PayloadOp::Clear => p.clear(),
                    }
                }
                c.update_payload(PointsSelector::Ids(vec![PointId::Num(id)]), op)
                    .unwrap();
            }
            85..=90 => c.flush().unwrap(),
            91..=93 => {
                c.vacuum().unwrap();
            }
            _ => {
                drop(c);
                drop(cs);
                cs = open(dir.path());
                assert!(cs.failed().is_empty(), "{:?}", cs.failed());
                c = cs.get("m").unwrap();
            }
        }
        if step % 25 == 0 {
            check(&c, &model);
        }
    }
    check(&c, &model);
    c.vacuum().unwrap();
    check(&c, &model);
    let info = c.info();
    assert!(info.segments_count >= 2, "{info:?}");
    drop(c);
    drop(cs);
    let cs = open(dir.path());
    check(&cs.get("m").unwrap(), &model);
}

#[test]
fn deleted_points_stay_deleted_through_seal_and_vacuum() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "d", small_config(2, Distance::Dot, 1000, 100_000));
    c.upsert(
        (0..100)
            .map(|i| dense(i, vec![i as f32, 1.0], json!({})))
            .collect(),
    )
    .unwrap();
    c.flush().unwrap();
    assert_eq!(
        c.info().wal_bytes,
        64,
        "the WAL holds only its header after a seal"
    );
    c.delete(PointsSelector::Ids((0..50).map(PointId::Num).collect()))
        .unwrap();
    assert_eq!(c.count(None).unwrap(), 50);
    assert_eq!(c.info().deleted_count, 50);
    // The background optimizer may get there first (the deletes pass the threshold); either way the
    // segment is rewritten once.
    assert!(c.vacuum().unwrap() <= 1);
    let info = c.info();
    assert_eq!((info.deleted_count, info.points_count), (0, 50));
    let all = scroll_all(&c, 1000);
    assert_eq!(
        all.iter().map(|r| r.0).collect::<Vec<_>>(),
        (50..100).collect::<Vec<_>>()
    );
    // The vacuumed segment's directory goes once nothing holds it.
    let segs: Vec<_> = std::fs::read_dir(dir.path().join("collections/d/segments"))
        .unwrap()
        .collect();
    assert_eq!(segs.len(), 1);
}

/// A seal never writes a segment above `segment_max_points`, even when writers got far ahead of it.
#[test]
fn a_large_backlog_seals_into_segments_of_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(
        &cs,
        "s",
        small_config(4, quiver_engine::Distance::Euclid, 100, 10),
    );
    let vs = random_vectors(1050, 4, 5);
    c.upsert(
        vs.iter()
            .enumerate()
            .map(|(i, v)| dense(i as u64, v.clone(), serde_json::json!({"i": i})))
            .collect(),
    )
    .unwrap();
    c.flush().unwrap();
    let m = c.manifest();
    assert_eq!(
        m.segments.len(),
        11,
        "1050 points in segments of at most 100"
    );
    drop(c);
    drop(cs);
    let cs = open(dir.path());
    let c = cs.get("s").unwrap();
    assert_eq!(c.count(None).unwrap(), 1050);
    let got = c
        .retrieve(
            &[
                quiver_engine::PointId::Num(0),
                quiver_engine::PointId::Num(1049),
            ],
            &quiver_engine::WithPayload::All,
            &quiver_engine::WithVectors::None,
        )
        .unwrap();
    assert_eq!(got.len(), 2);
}

#[test]
fn conditional_upserts_skip_what_their_conditions_exclude_across_seal_and_reopen() {
    use quiver_engine::point::{UpdateMode, UpsertConditions};
    let dir = tempfile::tempdir().unwrap();
    let payload_of = |c: &Collection, id: u64| {
        c.retrieve(&[PointId::Num(id)], &WithPayload::All, &WithVectors::None)
            .unwrap()
            .pop()
            .map(|r| serde_json::Value::Object(r.payload.unwrap()))
    };
    {
        let cs = open(dir.path());
        let c = create(&cs, "c", small_config(2, Distance::Dot, 1000, 1000));
        c.upsert(vec![
            dense(1, vec![1.0, 0.0], json!({"v": 1})),
            dense(2, vec![1.0, 0.0], json!({"v": 2})),
        ])
        .unwrap();
        // Point 2 lives in a sealed segment, point 1 too: the conditions must see both.
        c.flush().unwrap();
        let by_filter = UpsertConditions {
            mode: UpdateMode::Upsert,
            update_filter: Some(
                serde_json::from_value(json!({"must": [{"key": "v", "match": {"value": 1}}]}))
                    .unwrap(),
            ),
        };
        c.upsert_if(
            vec![
                dense(1, vec![0.0, 1.0], json!({"v": 10})),
                dense(2, vec![0.0, 1.0], json!({"v": 20})),
                dense(3, vec![0.0, 1.0], json!({"v": 30})),
            ],
            &by_filter,
        )
        .unwrap();
        let insert_only = UpsertConditions {
            mode: UpdateMode::InsertOnly,
            update_filter: None,
        };
        c.upsert_if(
            vec![
                dense(1, vec![0.0, 1.0], json!({"v": 11})),
                dense(4, vec![0.0, 1.0], json!({"v": 40})),
            ],
            &insert_only,
        )
        .unwrap();
        let update_only = UpsertConditions {
            mode: UpdateMode::UpdateOnly,
            update_filter: None,
        };
        c.upsert_if(
            vec![
                dense(3, vec![0.0, 1.0], json!({"v": 33})),
                dense(5, vec![0.0, 1.0], json!({"v": 50})),
            ],
            &update_only,
        )
        .unwrap();
    }
    // Reopen: the WAL replays only what was written.
    let cs = open(dir.path());
    let c = cs.get("c").unwrap();
    assert_eq!(payload_of(&c, 1), Some(json!({"v": 10})));
    assert_eq!(payload_of(&c, 2), Some(json!({"v": 2})));
    assert_eq!(payload_of(&c, 3), Some(json!({"v": 33})));
    assert_eq!(payload_of(&c, 4), Some(json!({"v": 40})));
    assert_eq!(payload_of(&c, 5), None);
    assert_eq!(c.count(None).unwrap(), 4);
}
