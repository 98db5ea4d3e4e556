//! The part of the hub's HTTP surface a download needs: a revision's commit and file list, a
//! file's metadata (`HEAD`, stopping at the redirect to the storage host, where the hub's headers
//! are) and its bytes (`GET` with `Range`). Redirects are followed here, not by ureq, so that the
//! token goes to the endpoint's host only.

use std::time::Duration;

use serde::Deserialize;
use ureq::http::{Request, Response};
use ureq::Body;

use super::{HubConfig, HubError};

const MAX_REDIRECTS: usize = 10;

/// A revision as `GET /api/models/{repo}/revision/{revision}` describes it.
#[derive(Debug, Deserialize)]
pub(crate) struct RepoInfo {
    /// The commit the revision names.
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Sibling {
    pub rfilename: String,
}

/// What the hub says of one file before it is downloaded.
#[derive(Debug)]
pub(crate) struct FileMeta {
    /// `X-Linked-Etag` (LFS files: the content's SHA-256), else `ETag` (the git blob id).
    pub etag: String,
    /// `X-Linked-Size`, else `Content-Length`.
    pub size: u64,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    endpoint: String,
    origin: Option<String>,
    token: Option<String>,
}

impl Client {
    pub(crate) fn new(config: &HubConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("quiver/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A stalled transfer fails (and is resumed by a retry) instead of hanging.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client {
            agent,
            origin: origin(&config.endpoint).map(str::to_string),
            endpoint: config.endpoint.clone(),
            token: config.token.clone(),
        }
    }

    /// The commit and files of `revision` (a branch, tag or commit).
    pub(crate) fn repo_info(&self, repo: &str, revision: &str) -> Result<RepoInfo, HubError> {
        let url = format!(
            "{}/api/models/{repo}/revision/{}",
            self.endpoint,
            encode(revision, false)
        );
        let (url, response) = self.send("GET", &url, None, true)?;
        let response = expect_success(&url, response)?;
        let text = response
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| transport(&url, e))?;
        serde_json::from_str(&text).map_err(|e| HubError::Protocol {
            url,
            message: format!("unexpected repository info: {e}"),
        })
    }

    /// Where `file` of `commit` is served.
    pub(crate) fn file_url(&self, repo: &str, commit: &str, file: &str) -> String {
        format!(
            "{}/{repo}/resolve/{}/{}",
            self.endpoint,
            encode(commit, false),
            encode(file, true)
        )
    }

    pub(crate) fn head(&self, url: &str) -> Result<FileMeta, HubError> {
        let (url, response) = self.send("HEAD", url, None, false)?;
        let response = if response.status().is_redirection() {
            response
        } else {
            expect_success(&url, response)?
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let missing = |what: &str| HubError::Protocol {
            url: url.clone(),
            message: format!("the answer has no {what} header"),
        };
        let etag = header("x-linked-etag")
            .or_else(|| header("etag"))
            .ok_or_else(|| missing("ETag"))?;
        let etag = etag
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_ascii_lowercase();
        let size = header("x-linked-size")
            .or_else(|| header("content-length"))
            .ok_or_else(|| missing("Content-Length"))?;
        let size = size.parse().map_err(|_| HubError::Protocol {
            url: url.clone(),
            message: format!("bad size {size:?}"),
        })?;
        Ok(FileMeta { etag, size })
    }

    /// The bytes of `url` from offset `from` on: a 200 (everything) or 206 (the rest) response.
    pub(crate) fn get(&self, url: &str, from: u64) -> Result<Response<Body>, HubError> {
        let (url, response) = self.send("GET", url, Some(from), true)?;
        if response.status().as_u16() == 416 {
            return Ok(response);
        }
        expect_success(&url, response)
    }

    /// Sends a request, following relative redirects (a renamed repository) and, with
    /// `follow_absolute`, redirects to other hosts (the storage host) too.
    fn send(
        &self,
        method: &str,
        url: &str,
        from: Option<u64>,
        follow_absolute: bool,
    ) -> Result<(String, Response<Body>), HubError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::builder()
                .method(method)
                .uri(&url)
                .header("accept-encoding", "identity");
            if let Some(token) = &self.token {
                if self.origin.is_some() && origin(&url) == self.origin.as_deref() {
                    request = request.header("authorization", format!("Bearer {token}"));
                }
            }
            if let Some(from) = from.filter(|&f| f > 0) {
                request = request.header("range", format!("bytes={from}-"));
            }
            let request = request.body(()).map_err(|e| HubError::Protocol {
                url: url.clone(),
                message: e.to_string(),
            })?;
            let response = self.agent.run(request).map_err(|e| transport(&url, e))?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok());
                if let Some(location) = location {
                    if location.starts_with('/') || follow_absolute {
                        url = join(&url, location).ok_or_else(|| HubError::Protocol {
                            url: url.clone(),
                            message: format!("cannot follow the redirect to {location:?}"),
                        })?;
                        continue;
                    }
                }
            }
            return Ok((url, response));
        }
        Err(HubError::Protocol {
            url,
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

fn transport(url: &str, e: ureq::Error) -> HubError {
    HubError::Transport {
        url: url.to_string(),
        source: Box::new(e),
    }
}

/// The response if its status is 2xx, else the error it stands for, with the hub's message.
fn expect_success(url: &str, response: Response<Body>) -> Result<Response<Body>, HubError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let header_message = response
        .headers()
        .get("x-error-message")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let message = match header_message {
        Some(m) => m,
        None => {
            let body = response
                .into_body()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default();
            // The hub's JSON errors are `{"error": "..."}`; anything else is shown as is.
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or(body)
        }
    };
    let message = message.trim().chars().take(300).collect::<String>();
    let url = url.to_string();
    Err(match status {
        401 | 403 => HubError::Denied {
            url,
            status,
            message,
        },
        404 => HubError::NotFound { url, message },
        _ => HubError::Status {
            url,
            status,
            message,
        },
    })
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    Some(&url[..end])
}

/// `location` resolved against `base`: absolute URLs as they are, `/path` on base's origin.
fn join(base: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        Some(location.to_string())
    } else if location.starts_with('/') && !location.starts_with("//") {
        Some(format!("{}{location}", origin(base)?))
    } else {
        None
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters (and `/` when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            origin("https://hub.example:8080/a/b?c"),
            Some("https://hub.example:8080")
        );
        assert_eq!(origin("http://127.0.0.1:9"), Some("http://127.0.0.1:9"));
        assert_eq!(origin("no-scheme/x"), None);
        assert_eq!(
            join("http://h:1/a/b", "/c/d").as_deref(),
            Some("http://h:1/c/d")
        );
        assert_eq!(
            join("http://h:1/a", "https://cdn/x").as_deref(),
            Some("https://cdn/x")
        );
        assert_eq!(join("http://h:1/a", "//evil/x"), None);
        assert_eq!(join("http://h:1/a", "relative"), None);
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(
            encode("1_Pooling/config.json", true),
            "1_Pooling/config.json"
        );
        assert_eq!(encode("a b+é", true), "a%20b%2B%C3%A9");
    }
}
