//! The search page: served from the binary under `/ui/` with the right types and cache headers,
//! without an API key, and `/` sends browsers there while API clients keep their JSON.

use std::collections::HashMap;

use crate::support::QuiverProcess;

/// A GET without following redirects: status, headers (lower-case names) and body.
fn get(
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut request = agent.get(&format!("{base}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let body = response.body_mut().read_to_vec().unwrap();
    (response.status().as_u16(), headers, body)
}

/// Every `src="…"` and `href="…"` of the page that is not a fragment.
fn linked_files(html: &str) -> Vec<String> {
    let mut files = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            let value = &rest[..rest.find('"').unwrap()];
            if !value.starts_with('#') {
                files.push(value.to_string());
            }
        }
    }
    files.sort();
    files.dedup();
    files
}

#[test]
fn the_page_is_served_without_a_key() {
    let server = QuiverProcess::start(&["--api-key", "secret"]);
    let base = server.client().base().to_string();

    // The API itself still needs the key.
    let (status, _, _) = get(&base, "/collections", &[]);
    assert_eq!(status, 401);

    let (status, headers, body) = get(&base, "/ui/", &[]);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"].contains("connect-src 'self'"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<title>Quiver</title>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );

    let linked = linked_files(&html);
    assert_eq!(linked, ["app.css", "app.js", "icon.svg"], "{html}");
    let want_type = |file: &str| match file.rsplit('.').next().unwrap() {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        other => panic!("unexpected asset type {other}"),
    };
    for file in &linked {
        let (status, headers, body) = get(&base, &format!("/ui/{file}"), &[]);
        assert_eq!(status, 200, "{file}");
        assert_eq!(headers["content-type"], want_type(file), "{file}");
        assert!(!body.is_empty(), "{file}");
        let source = String::from_utf8(body).unwrap();
        assert!(
            !source.contains("https://"),
            "{file} must not load from elsewhere"
        );

        // Revalidation: the ETag answers 304 with no body; another tag gets the file.
        let etag = headers["etag"].clone();
        let (status, _, body) = get(&base, &format!("/ui/{file}"), &[("if-none-match", &etag)]);
        assert_eq!(status, 304, "{file}");
        assert!(body.is_empty());
        let (status, _, _) = get(&base, &format!("/ui/{file}"), &[("if-none-match", "\"x\"")]);
        assert_eq!(status, 200, "{file}");
    }
    let (status, headers, _) = get(&base, "/ui/missing.js", &[]);
    assert_eq!(status, 404);
    assert!(headers["content-type"].starts_with("application/json"));
}

#[test]
fn the_root_sends_browsers_to_the_page() {
    let server = QuiverProcess::start(&["--api-key", "secret"]);
    let base = server.client().base().to_string();
    let browser = [(
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    )];
    for path in ["/", "/ui"] {
        let (status, headers, _) = get(&base, path, &browser);
        assert_eq!(status, 303, "{path}");
        assert_eq!(headers["location"], "/ui/", "{path}");
    }
    // API clients (no Accept, or JSON) keep Qdrant's version info at the root.
    for accept in [None, Some("application/json")] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let (status, response_headers, body) = get(&base, "/", &headers);
        assert_eq!(status, 200);
        assert_eq!(response_headers["vary"], "Accept");
        let info: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(info["title"], "quiver");
    }
}
