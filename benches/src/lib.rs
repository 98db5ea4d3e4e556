//! Quiver's benchmarks. This crate has no library code: `benches/` holds the criterion benches
//! (`cargo bench -p quiver-benches`) and `examples/` the benchmark programs — the engine's (`ann_bench`,
//! `open_bench`, `plaid_bench`, `quantization_bench`, `peer_bench`, the Rust side of `scripts/bench/run-all.sh`, and
//! `sparse_filter_bench`, the Rust side of `scripts/bench/sparse_filter_bench.py`), the
//! encoder's (`encode_bench`, `text_bench`, `image_bench`) and the server's load tests (`http_load`,
//! `embed_load`, `ingest_query`, which drive a `quiver` binary). Run them with
//! `cargo run --release -p quiver-benches --example NAME -- ARGS`; `docs/benchmarks.md` has each command.
