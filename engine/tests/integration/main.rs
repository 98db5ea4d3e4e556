//! Engine integration tests: one binary, so the crate links once.

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

mod aliases;
mod alloc_count;
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
mod query_work;
mod recall;
mod seal_memory;
mod search;
mod snapshot;
mod sparse;
mod text_index_params;
mod updates;
mod value_graphs;
