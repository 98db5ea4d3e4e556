//! The optimization log: a seal and a vacuum are recorded with their inputs and progress, and the
//! queue and idle segments follow the segment set.

use quiver_engine::config::Distance;
use quiver_engine::point::PointsSelector;
use quiver_engine::{OptimizationKind, OptimizationStatus, PointId, SegmentRef};
use serde_json::json;

use crate::common::*;

#[test]
fn seal_and_vacuum_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let cs = open(dir.path());
    // Segments of 1000 points: nothing seals in the background.
    let c = create(&cs, "log", small_config(2, Distance::Dot, 1000, 100_000));
    c.upsert(
        (0..10)
            .map(|i| dense(i, vec![i as f32, 1.0], json!({})))
            .collect(),
    )
    .unwrap();
    let fresh = c.optimizations();
    assert!(fresh.running.is_none() && fresh.completed.is_empty());
    assert!(fresh.queued.is_empty() && fresh.idle.is_empty());

    c.flush().unwrap();
    let sealed = c.optimizations();
    assert!(sealed.running.is_none());
    let seal = &sealed.completed[0];
    assert_eq!(seal.kind, OptimizationKind::Seal);
    assert_eq!(seal.status, OptimizationStatus::Done);
    assert_eq!(
        seal.segments,
        [SegmentRef {
            id: None,
            points: 10
        }]
    );
    assert_eq!((seal.points_done, seal.points_total), (10, 10));
    assert!(seal.finished.unwrap() >= seal.started);
    assert_eq!(
        sealed.idle,
        [SegmentRef {
            id: Some(seal.id),
            points: 10
        }]
    );
    assert_eq!(sealed.optimized_points, 10);

    // Three of ten deleted passes the 0.2 threshold: the vacuum keeps seven.
    c.delete(PointsSelector::Ids((0..3).map(PointId::Num).collect()))
        .unwrap();
    // The delete wakes the background optimizer, which may get there first; either way the vacuum is
    // done once this returns (both hold the optimizer lock).
    c.vacuum().unwrap();
    let vacuumed = c.optimizations();
    let vacuum = &vacuumed.completed[0];
    assert_eq!(vacuum.kind, OptimizationKind::Vacuum);
    assert_eq!(
        vacuum.segments,
        [SegmentRef {
            id: Some(seal.id),
            points: 7
        }]
    );
    assert_eq!((vacuum.points_done, vacuum.points_total), (7, 7));
    assert_eq!(
        vacuumed.idle,
        [SegmentRef {
            id: Some(vacuum.id),
            points: 7
        }]
    );
    assert_eq!(vacuumed.optimized_points, 17);
    assert_eq!(vacuumed.completed[1].id, seal.id);
}
