//! Engine integration tests: one binary, so the crate links once.

mod aliases;
mod common;
mod corruption;
mod crud;
mod durability;
mod examples;
mod groups;
mod matryoshka;
mod merge;
mod optimizations;
mod optimizer_config;
mod payload_index;
mod plaid;
mod quantization;
mod query;
mod recall;
mod search;
mod snapshot;
mod sparse;
mod updates;
