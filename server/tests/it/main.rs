//! Process-level tests: they run the real `quiver` binary on temporary data directories.
//! One test binary, so it links once.

mod cli;
mod cli_embed;
mod cli_hub;
mod cli_ingest;
mod crash;
#[path = "../../../tests/support/fake_hub.rs"]
mod fake_hub;
mod http_aliases;
mod http_auth;
mod http_bm25;
mod http_bound;
mod http_collection_update;
mod http_collections;
mod http_compat;
mod http_concurrency;
mod http_documents;
mod http_documents_route;
mod http_embed;
mod http_facet;
mod http_filters;
mod http_formula;
mod http_groups;
mod http_matrix;
mod http_minilm;
mod http_order_by;
mod http_payload_index;
mod http_points;
mod http_quantization;
mod http_recommend;
mod http_search;
mod http_search_inline;
mod http_service;
mod http_snapshots;
mod http_sparse;
mod http_strict_mode;
mod http_telemetry;
mod http_timeout;
mod http_ui;
mod http_vectors;
mod snapshot;
mod support;
