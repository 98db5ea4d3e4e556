//! Request and response bodies in Qdrant's JSON shapes, and their translation to the engine's types.

pub mod collections;
pub mod common;
pub mod points;
pub mod search;
pub mod snapshots;
