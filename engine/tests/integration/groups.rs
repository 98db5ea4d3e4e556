//! `Collection::query_groups`: hits grouped by a payload field, checked against groups built from the
//! exact ranking of every point.

use quiver_engine::query::{GroupKey, GroupsRequest, QueryInput, QueryRequest, SearchParams};
use quiver_engine::{Distance, Error, PointId, WithPayload};
use serde_json::{json, Value};

use crate::common::*;

const N: usize = 600;

fn key_of(i: usize) -> Value {
    // Uneven group sizes: t runs over 0..231 and group k takes k + 1 of its values (231 = 21 · 22 / 2),
    // so the best groups are not all filled by the first round.
    let t = (i * 37) % 231;
    let k = (0..21).find(|k| (k + 1) * (k + 2) / 2 > t).unwrap();
    json!(format!("g{k}"))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn euclid(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The groups an exhaustive ranking gives: walk the points best first, place each in its groups while
/// they have room, keep the first `groups` groups opened.
fn reference(
    ranked: &[(u64, f32)],
    keys: &dyn Fn(u64) -> Vec<GroupKey>,
    groups: usize,
    size: usize,
) -> Vec<(GroupKey, Vec<u64>)> {
    let mut out: Vec<(GroupKey, Vec<u64>)> = Vec::new();
    for (id, _) in ranked {
        for key in keys(*id) {
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, hits)) if hits.len() < size => hits.push(*id),
                Some(_) => {}
                None => out.push((key, vec![*id])),
            }
        }
    }
    out.truncate(groups);
    out
}

fn got(answer: &quiver_engine::query::GroupsResponse) -> Vec<(GroupKey, Vec<u64>)> {
    answer
        .groups
        .iter()
        .map(|g| (g.key.clone(), ids(g.hits.iter().map(|h| h.id))))
        .collect()
}

fn request(query: Vec<f32>, group_by: &str, groups: usize, size: usize) -> GroupsRequest {
    GroupsRequest {
        query: QueryRequest {
            params: SearchParams {
                exact: true,
                ..SearchParams::default()
            },
            ..QueryRequest::nearest(None, QueryInput::Dense(query), groups * size)
        },
        group_by: group_by.into(),
        group_size: size,
        groups,
    }
}

fn keyword(v: &Value) -> Vec<GroupKey> {
    vec![GroupKey::Keyword(v.as_str().unwrap().to_string())]
}

#[test]
fn groups_match_an_exhaustive_ranking_over_sealed_and_appendable_points() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "g", small_config(8, Distance::Dot, 256, 64));
    let vectors = random_vectors(N, 8, 3);
    let points = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| dense(i as u64, v.clone(), json!({"doc": key_of(i), "i": i})))
        .collect();
    c.upsert(points).unwrap();
    let query = random_vectors(1, 8, 99).remove(0);
    let mut ranked: Vec<(u64, f32)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, dot(v, &query)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let keys = |id: u64| keyword(&key_of(id as usize));
    let mut most_rounds = 0;
    for (groups, size) in [(3, 2), (5, 4), (8, 1), (30, 3)] {
        let answer = c
            .query_groups(&request(query.clone(), "doc", groups, size))
            .unwrap();
        assert_eq!(
            got(&answer),
            reference(&ranked, &keys, groups, size),
            "{groups} groups of {size}"
        );
        for hit in answer.groups.iter().flat_map(|g| &g.hits) {
            let expected = ranked
                .iter()
                .find(|(id, _)| PointId::Num(*id) == hit.id)
                .unwrap()
                .1;
            assert!((hit.score - expected).abs() < 1e-4);
            assert!(hit.payload.is_none(), "the request asked for no payload");
        }
        most_rounds = most_rounds.max(answer.stages.len());
    }
    assert!(most_rounds > 1, "some case should need more than one round");
    // Asking for more groups than exist returns every group.
    let all = c
        .query_groups(&request(query.clone(), "doc", 50, 2))
        .unwrap();
    assert_eq!(all.groups.len(), 21);
}

#[test]
fn euclid_ranks_lower_first_and_integer_arrays_join_every_group_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "g", small_config(4, Distance::Euclid, 100, 1_000));
    let vectors = random_vectors(200, 4, 5);
    let tags = |i: usize| -> Value {
        match i % 5 {
            0 => json!([i % 7, (i + 1) % 7, i % 7]),
            1 => json!(i % 7),
            2 => json!(true),
            3 => json!({"nested": 1}),
            _ => Value::Null,
        }
    };
    let points = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            dense(
                i as u64,
                v.clone(),
                json!({"tag": tags(i), "keep": i % 2 == 0}),
            )
        })
        .collect();
    c.upsert(points).unwrap();
    let query = vec![0.1, -0.2, 0.3, 0.0];
    let filter: quiver_engine::Filter =
        serde_json::from_value(json!({"must": [{"key": "keep", "match": {"value": true}}]}))
            .unwrap();
    let mut ranked: Vec<(u64, f32)> = vectors
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(i, v)| (i as u64, euclid(v, &query)))
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let keys = |id: u64| -> Vec<GroupKey> {
        let mut out = Vec::new();
        let mut push = |v: &Value| {
            if let Some(n) = v.as_i64() {
                if !out.contains(&GroupKey::Integer(n)) {
                    out.push(GroupKey::Integer(n));
                }
            }
        };
        match tags(id as usize) {
            Value::Array(items) => items.iter().for_each(&mut push),
            v => push(&v),
        }
        out
    };
    let mut req = request(query, "tag", 4, 3);
    req.query.filter = Some(filter);
    req.query.with_payload = WithPayload::Include(vec!["keep".into()]);
    let answer = c.query_groups(&req).unwrap();
    assert_eq!(got(&answer), reference(&ranked, &keys, 4, 3));
    for hit in answer.groups.iter().flat_map(|g| &g.hits) {
        assert_eq!(hit.payload.as_ref().unwrap(), &obj(json!({"keep": true})));
    }
}

#[test]
fn bad_groups_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    let c = create(&cs, "g", small_config(2, Distance::Dot, 100, 100));
    c.upsert(vec![dense(1, vec![1.0, 0.0], json!({"k": "a"}))])
        .unwrap();
    for (mutate, needle) in [
        (
            Box::new(|r: &mut GroupsRequest| r.group_size = 0) as Box<dyn Fn(&mut GroupsRequest)>,
            "group_size",
        ),
        (Box::new(|r: &mut GroupsRequest| r.groups = 0), "limit"),
        (
            Box::new(|r: &mut GroupsRequest| r.group_by.clear()),
            "group_by",
        ),
        (
            Box::new(|r: &mut GroupsRequest| r.query.offset = 1),
            "offset",
        ),
    ] {
        let mut req = request(vec![1.0, 0.0], "k", 2, 2);
        mutate(&mut req);
        match c.query_groups(&req) {
            Err(Error::InvalidInput(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("{needle}: {other:?}"),
        }
    }
    let ok = c.query_groups(&request(vec![1.0, 0.0], "k", 2, 2)).unwrap();
    assert_eq!(got(&ok), vec![(GroupKey::Keyword("a".into()), vec![1])]);
}
