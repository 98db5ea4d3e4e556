//! Bounds a request may not exceed, set by the server's flags.

use quiver_engine::query::{Prefetch, Query, QueryRequest};

use super::error::ApiError;

/// Bounds a request may not exceed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest `limit + offset` of a search, query, prefetch or scroll page.
    pub max_limit: usize,
    /// Most points in one upsert, or searches in one batch.
    pub max_batch: usize,
    /// Largest snapshot upload or download, in bytes.
    pub max_snapshot_upload_bytes: u64,
    /// Whether and where recover may download a snapshot from a URL.
    pub snapshot_urls: super::snapshot_url::UrlPolicy,
}

impl Limits {
    /// Checks a page size (and offset) against the limit.
    pub fn check_limit(&self, limit: usize, offset: usize) -> Result<(), ApiError> {
        if limit == 0 {
            return Err(ApiError::Validation("limit must be at least 1".into()));
        }
        if limit.saturating_add(offset) > self.max_limit {
            return Err(ApiError::Validation(format!(
                "limit + offset must not exceed {} (the server's --max-limit)",
                self.max_limit
            )));
        }
        Ok(())
    }

    /// Checks the page size of a query and of each of its prefetches (after the default funnel, whose
    /// stages count like a client's).
    pub fn check_query<I>(&self, request: &QueryRequest<I>) -> Result<(), ApiError> {
        // An mmr stage compares every pair of its candidates: they count as a limit too.
        fn mmr<I>(limits: &Limits, query: Option<&Query<I>>) -> Result<(), ApiError> {
            match query {
                Some(Query::Mmr { mmr, .. }) => mmr
                    .candidates_limit
                    .map_or(Ok(()), |n| limits.check_limit(n, 0)),
                _ => Ok(()),
            }
        }
        fn prefetches<I>(limits: &Limits, list: &[Prefetch<I>]) -> Result<(), ApiError> {
            for p in list {
                limits.check_limit(p.limit, 0)?;
                mmr(limits, p.query.as_ref())?;
                prefetches(limits, &p.prefetch)?;
            }
            Ok(())
        }
        self.check_limit(request.limit, request.offset)?;
        mmr(self, request.query.as_ref())?;
        prefetches(self, &request.prefetch)
    }

    /// Checks a batch size against the limit.
    pub fn check_batch(&self, n: usize, what: &str) -> Result<(), ApiError> {
        if n > self.max_batch {
            return Err(ApiError::Validation(format!(
                "{n} {what} in one request; the server accepts at most {} (--max-batch)",
                self.max_batch
            )));
        }
        Ok(())
    }
}
