//! API keys as Qdrant has them: an admin key for everything and a read-only key for reads and searches,
//! sent as an `api-key` header or `Authorization: Bearer …`, compared in constant time. Health, the root,
//! the OpenAPI document, its docs page and the search page are open.

use actix_web::http::Method;
use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No key needed.
    Open,
    /// The read-only key or the admin key.
    Read,
    /// The admin key.
    Write,
}

/// POST routes that only read: retrieve, scroll, facet, count, search, query and embedding.
const READ_POSTS: &[&str] = &[
    "/embed",
    "/embed_all",
    "/v1/embeddings",
    "/collections/{name}/points",
    "/collections/{name}/points/scroll",
    "/collections/{name}/facet",
    "/collections/{name}/points/count",
    "/collections/{name}/points/search",
    "/collections/{name}/points/search/batch",
    "/collections/{name}/points/query",
    "/collections/{name}/points/query/batch",
    "/collections/{name}/points/search/groups",
    "/collections/{name}/points/query/groups",
    "/collections/{name}/points/recommend",
    "/collections/{name}/points/recommend/batch",
    "/collections/{name}/points/recommend/groups",
    "/collections/{name}/points/discover",
    "/collections/{name}/points/discover/batch",
    "/collections/{name}/points/search/matrix/pairs",
    "/collections/{name}/points/search/matrix/offsets",
];

/// Routes anyone may call.
const OPEN: &[&str] = &[
    "/",
    "/healthz",
    "/livez",
    "/readyz",
    "/openapi.json",
    "/docs",
    // The search page holds no data; it asks for a key when the API answers 401.
    "/ui",
    "/ui/",
    "/ui/{file}",
];

/// The access a request needs, from its method and matched route pattern.
pub fn required_access(method: &Method, pattern: Option<&str>) -> Access {
    match pattern {
        Some(p) if OPEN.contains(&p) => Access::Open,
        // Snapshots hold (and restore) whole collections: admin only, downloads and listings included.
        Some(p) if p.contains("/snapshots") => Access::Write,
        _ if method == Method::GET || method == Method::HEAD => Access::Read,
        Some(p) if method == Method::POST && READ_POSTS.contains(&p) => Access::Read,
        _ => Access::Write,
    }
}

/// The configured keys.
#[derive(Clone, Default)]
pub struct Auth {
    admin: Option<Vec<u8>>,
    read_only: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("admin", &self.admin.as_ref().map(|_| "<redacted>"))
            .field("read_only", &self.read_only.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Auth {
    /// Keys from the settings; empty strings count as unset.
    pub fn new(admin: Option<&str>, read_only: Option<&str>) -> Self {
        let key = |k: Option<&str>| k.filter(|k| !k.is_empty()).map(|k| k.as_bytes().to_vec());
        Auth {
            admin: key(admin),
            read_only: key(read_only),
        }
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        self.admin.is_some() || self.read_only.is_some()
    }

    /// Accepts or rejects a request.
    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let needed = required_access(req.method(), req.match_pattern().as_deref());
        if needed == Access::Open {
            return Ok(());
        }
        let presented = presented_key(req).ok_or(ApiError::Unauthorized(
            "must provide an API key in the `api-key` header or as `Authorization: Bearer <key>`",
        ))?;
        let is =
            |key: &Option<Vec<u8>>| key.as_ref().is_some_and(|k| bool::from(k.ct_eq(presented)));
        // Both comparisons always run so timing does not tell which key was close.
        let admin = is(&self.admin);
        let read_only = is(&self.read_only);
        match (admin, read_only, needed) {
            (true, _, _) => Ok(()),
            (false, true, Access::Read | Access::Open) => Ok(()),
            (false, true, Access::Write) => Err(ApiError::Forbidden),
            (false, false, _) => Err(ApiError::Unauthorized("invalid API key")),
        }
    }
}

fn presented_key(req: &HttpRequest) -> Option<&[u8]> {
    let headers = req.headers();
    if let Some(key) = headers.get("api-key") {
        return Some(key.as_bytes());
    }
    let auth = headers
        .get(actix_web::http::header::AUTHORIZATION)?
        .as_bytes();
    let token = auth
        .strip_prefix(b"Bearer ")
        .or_else(|| auth.strip_prefix(b"bearer "))?;
    Some(token.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_access() {
        assert_eq!(
            required_access(&Method::GET, Some("/healthz")),
            Access::Open
        );
        assert_eq!(
            required_access(&Method::GET, Some("/collections")),
            Access::Read
        );
        assert_eq!(
            required_access(&Method::GET, Some("/metrics")),
            Access::Read
        );
        assert_eq!(
            required_access(&Method::POST, Some("/collections/{name}/points/query")),
            Access::Read
        );
        assert_eq!(
            required_access(&Method::PUT, Some("/collections/{name}/points")),
            Access::Write
        );
        assert_eq!(
            required_access(&Method::POST, Some("/collections/{name}/points/delete")),
            Access::Write
        );
        assert_eq!(required_access(&Method::POST, None), Access::Write);
    }
}
