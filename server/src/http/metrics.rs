//! Prometheus metrics in the text exposition format: request counts and latency histograms per
//! method, route pattern and status, plus per-collection gauges read at scrape time; then the same
//! figures under Qdrant's names (`app_info`, `collections_*`, `rest_responses_*`). `/telemetry` reads
//! the same request counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use quiver_engine::Collections;

use crate::inference::{ModelState, Models};

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    /// Fastest and slowest request (seconds); meaningless while `count` is 0.
    min: f64,
    max: f64,
}

/// One series' totals, as `/telemetry` reports them.
#[derive(Clone, Copy, Debug)]
pub struct ResponseStats {
    /// Requests answered.
    pub count: u64,
    /// Total seconds spent on them.
    pub sum: f64,
    /// Fastest and slowest, in seconds.
    pub min: f64,
    pub max: f64,
}

/// Whether Qdrant counts a status as a failure: anything that is not a success or a redirect.
fn is_failure(status: u16) -> bool {
    status >= 400
}

/// Key of one series: method, route pattern (or `unmatched`), status.
pub type SeriesKey = (String, String, u16);

/// Where a search request ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchThread {
    /// On the async worker that received it: the engine bounded its work under the server's budget.
    Inline,
    /// On the blocking pool.
    Pool,
}

/// Request metrics of the server.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<SeriesKey, Histogram>>,
    searches_inline: AtomicU64,
    searches_pooled: AtomicU64,
}

impl Metrics {
    /// Counts one search request (`points/query`, `points/search` or their batches) where it ran.
    pub fn count_search(&self, thread: SearchThread) {
        let counter = match thread {
            SearchThread::Inline => &self.searches_inline,
            SearchThread::Pool => &self.searches_pooled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Search requests so far that ran there.
    pub fn searches(&self, thread: SearchThread) -> u64 {
        match thread {
            SearchThread::Inline => &self.searches_inline,
            SearchThread::Pool => &self.searches_pooled,
        }
        .load(Ordering::Relaxed)
    }

    /// Records one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock();
        let h = requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        if h.count == 0 || seconds < h.min {
            h.min = seconds;
        }
        h.max = h.max.max(seconds);
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    /// Every series so far: method, route pattern and status with its totals.
    pub fn responses(&self) -> Vec<(SeriesKey, ResponseStats)> {
        self.requests
            .lock()
            .iter()
            .map(|(key, h)| {
                let stats = ResponseStats {
                    count: h.count,
                    sum: h.sum,
                    min: h.min,
                    max: h.max,
                };
                (key.clone(), stats)
            })
            .collect()
    }

    /// The whole exposition: Quiver's names (requests, collections, models), then the same
    /// figures under Qdrant's names.
    pub fn render(
        &self,
        collections: Option<&Collections>,
        models: &Models,
        uptime_seconds: f64,
    ) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP quiver_up Whether the server is up.\n# TYPE quiver_up gauge\nquiver_up 1\n",
        );
        let _ = writeln!(
            out,
            "# HELP quiver_uptime_seconds Seconds since the server started.\n\
             # TYPE quiver_uptime_seconds gauge\nquiver_uptime_seconds {uptime_seconds}"
        );
        self.render_requests(&mut out);
        self.render_searches(&mut out);
        if let Some(collections) = collections {
            render_collections(&mut out, collections);
        }
        render_models(&mut out, models);
        render_qdrant_app(&mut out, collections);
        self.render_qdrant_requests(&mut out);
        out
    }

    /// Qdrant's `rest_responses_*` families: labels `method`, `endpoint` (the route pattern) and
    /// `status`; the average, minimum, maximum and histogram for every status (Qdrant keeps timings
    /// for 200 only).
    fn render_qdrant_requests(&self, out: &mut String) {
        let requests = self.requests.lock();
        if requests.is_empty() {
            return;
        }
        let labels = |(method, route, status): &SeriesKey| {
            format!(
                "method=\"{}\",endpoint=\"{}\",status=\"{status}\"",
                escape(method),
                escape(route)
            )
        };
        type Value = fn(&SeriesKey, &Histogram) -> f64;
        let families: [(&str, &str, &str, Value); 5] = [
            (
                "rest_responses_total",
                "total number of responses",
                "counter",
                |_, h| h.count as f64,
            ),
            (
                "rest_responses_fail_total",
                "total number of failed responses",
                "counter",
                |k, h| if is_failure(k.2) { h.count as f64 } else { 0.0 },
            ),
            (
                "rest_responses_avg_duration_seconds",
                "average response duration",
                "gauge",
                |_, h| h.sum / h.count.max(1) as f64,
            ),
            (
                "rest_responses_min_duration_seconds",
                "minimum response duration",
                "gauge",
                |_, h| h.min,
            ),
            (
                "rest_responses_max_duration_seconds",
                "maximum response duration",
                "gauge",
                |_, h| h.max,
            ),
        ];
        for (name, help, kind, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (key, h) in requests.iter() {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(key), value(key, h));
            }
        }
        out.push_str(
            "# HELP rest_responses_duration_seconds response duration histogram\n\
             # TYPE rest_responses_duration_seconds histogram\n",
        );
        for (key, h) in requests.iter() {
            let labels = labels(key);
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "rest_responses_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "rest_responses_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 rest_responses_duration_seconds_sum{{{labels}}} {}\n\
                 rest_responses_duration_seconds_count{{{labels}}} {}",
                h.count, h.sum, h.count
            );
        }
    }

    fn render_searches(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP quiver_search_requests_total Search requests (points/query, points/search and \
             their batches) by where they ran: `inline` on the async worker that received them, \
             `pool` on the blocking pool.\n\
             # TYPE quiver_search_requests_total counter\n\
             quiver_search_requests_total{{thread=\"inline\"}} {}\n\
             quiver_search_requests_total{{thread=\"pool\"}} {}",
            self.searches(SearchThread::Inline),
            self.searches(SearchThread::Pool),
        );
    }

    fn render_requests(&self, out: &mut String) {
        let requests = self.requests.lock();
        out.push_str(
            "# HELP quiver_http_requests_total HTTP requests by method, route and status.\n\
             # TYPE quiver_http_requests_total counter\n",
        );
        for ((method, route, status), h) in requests.iter() {
            let _ = writeln!(
                out,
                "quiver_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(method),
                escape(route),
                h.count
            );
        }
        out.push_str(
            "# HELP quiver_http_request_duration_seconds HTTP request latency by method, route and status.\n\
             # TYPE quiver_http_request_duration_seconds histogram\n",
        );
        for ((method, route, status), h) in requests.iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{status}\"",
                escape(method),
                escape(route)
            );
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "quiver_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "quiver_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "quiver_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "quiver_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

/// Qdrant's `app_info`, `collections_total` and `collections_vector_total` (live points times their
/// dense and sparse vectors, summed over the collections; a point without one of its named vectors
/// still counts it).
fn render_qdrant_app(out: &mut String, collections: Option<&Collections>) {
    let _ = writeln!(
        out,
        "# HELP app_info information about the server\n# TYPE app_info gauge\n\
         app_info{{name=\"quiver\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let Some(collections) = collections else {
        return;
    };
    let names = collections.list();
    let vectors: usize = names
        .iter()
        .filter_map(|name| collections.get(name).ok())
        .map(|c| vector_count(&c.config(), c.info().points_count))
        .sum();
    let _ = writeln!(
        out,
        "# HELP collections_total number of collections\n# TYPE collections_total gauge\n\
         collections_total {}\n\
         # HELP collections_vector_total total number of vectors in all collections\n\
         # TYPE collections_vector_total gauge\ncollections_vector_total {vectors}",
        names.len()
    );
}

/// Vectors of a collection as Qdrant counts them: one per named vector (dense or sparse) per point.
pub fn vector_count(config: &quiver_engine::CollectionConfig, points: usize) -> usize {
    points * (config.vectors.len() + config.sparse_vectors.len())
}

fn render_collections(out: &mut String, collections: &Collections) {
    let infos: Vec<_> = collections
        .list()
        .into_iter()
        .filter_map(|name| collections.get(&name).ok().map(|c| (name, c.info())))
        .collect();
    type Field = fn(&quiver_engine::point::CollectionInfo) -> f64;
    let gauges: [(&str, &str, Field); 6] = [
        ("quiver_collection_points", "Live points.", |i| {
            i.points_count as f64
        }),
        (
            "quiver_collection_segments",
            "Segments (sealed plus appendable).",
            |i| i.segments_count as f64,
        ),
        (
            "quiver_collection_deleted_points",
            "Tombstoned points still held in sealed segments.",
            |i| i.deleted_count as f64,
        ),
        (
            "quiver_collection_indexed_vectors",
            "Points in segments that have an HNSW graph.",
            |i| i.indexed_vectors_count as f64,
        ),
        (
            "quiver_collection_wal_bytes",
            "Bytes of write-ahead log not yet folded into sealed segments.",
            |i| i.wal_bytes as f64,
        ),
        (
            "quiver_collection_disk_bytes",
            "Bytes of the collection's files.",
            |i| i.disk_bytes as f64,
        ),
    ];
    for (name, help, field) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (collection, info) in &infos {
            let _ = writeln!(
                out,
                "{name}{{collection=\"{}\"}} {}",
                escape(collection),
                field(info)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP quiver_collections_failed Collections on disk that failed to open.\n\
         # TYPE quiver_collections_failed gauge\nquiver_collections_failed {}",
        collections.failed().len()
    );
}

fn load(c: &std::sync::atomic::AtomicU64) -> f64 {
    c.load(std::sync::atomic::Ordering::Relaxed) as f64
}

/// Per model: queue depth (a gauge) and the worker's counters. Tokens per second is
/// `rate(quiver_encoder_tokens_total)`, the mean batch size `inputs_total / batches_total`.
fn render_models(out: &mut String, models: &Models) {
    let ready: Vec<(&str, std::sync::Arc<quiver_encoder::EncoderService>)> = models
        .names()
        .filter_map(|name| match models.state(name) {
            Some(ModelState::Ready(service)) => Some((name, service)),
            _ => None,
        })
        .collect();
    if models.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP quiver_model_ready Whether the model is loaded (0 while loading or after a failure).
\
         # TYPE quiver_model_ready gauge"
    );
    for name in models.names() {
        let up = ready.iter().any(|(n, _)| *n == name);
        let _ = writeln!(
            out,
            "quiver_model_ready{{model=\"{}\"}} {}",
            escape(name),
            u8::from(up)
        );
    }
    let _ = writeln!(
        out,
        "# HELP quiver_encoder_queue_depth Requests queued or running in the model's worker.
\
         # TYPE quiver_encoder_queue_depth gauge"
    );
    for (name, service) in &ready {
        let _ = writeln!(
            out,
            "quiver_encoder_queue_depth{{model=\"{}\"}} {}",
            escape(name),
            service.queue_depth()
        );
    }
    type Counter = fn(&quiver_encoder::ServiceStats) -> f64;
    let counters: [(&str, &str, Counter); 7] = [
        ("quiver_encoder_batches_total", "Forward passes run.", |s| {
            load(&s.batches)
        }),
        ("quiver_encoder_inputs_total", "Inputs embedded.", |s| {
            load(&s.inputs)
        }),
        (
            "quiver_encoder_tokens_total",
            "Tokens embedded (without padding).",
            |s| load(&s.tokens),
        ),
        (
            "quiver_encoder_padded_tokens_total",
            "Tokens run through the model, padding included.",
            |s| load(&s.padded_tokens),
        ),
        (
            "quiver_encoder_busy_seconds_total",
            "Seconds spent in forward passes (the worker's and inline ones).",
            |s| load(&s.busy_micros) / 1e6,
        ),
        (
            "quiver_encoder_inline_batches_total",
            "Forward passes run on the request's own thread because the encoder was idle (also in batches_total).",
            |s| load(&s.inline_batches),
        ),
        (
            "quiver_encoder_rejected_total",
            "Requests refused with 429 because the queue was full.",
            |s| load(&s.rejected),
        ),
    ];
    for (metric, help, field) in counters {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for (name, service) in &ready {
            let _ = writeln!(
                out,
                "{metric}{{model=\"{}\"}} {}",
                escape(name),
                field(service.stats())
            );
        }
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe("GET", "/x", 200, 0.003);
        m.observe("GET", "/x", 200, 0.2);
        let text = m.render(None, &Models::default(), 1.0);
        assert!(text
            .contains("quiver_http_requests_total{method=\"GET\",route=\"/x\",status=\"200\"} 2"));
        assert!(text.contains("route=\"/x\",status=\"200\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"/x\",status=\"200\",le=\"0.25\"} 2"));
        assert!(text.contains("route=\"/x\",status=\"200\",le=\"+Inf\"} 2"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
