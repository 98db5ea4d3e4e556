//! The search page: plain HTML, CSS and JavaScript from `server/ui/`, compiled into the binary and
//! served under `/ui/` without an API key (the page asks for one when the API answers 401). A browser
//! asking for `/` is sent to the page; API clients still get the JSON version info there.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::resource;
use crate::http::error::ApiError;

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../../ui/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../ui/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../ui/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../../ui/icon.svg"),
    },
];

/// Only this server's own files and API: the page must work without any network beyond it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Registers `/ui`, `/ui/` and `/ui/{file}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/ui").route(web::get().to(to_page)))
        .service(resource("/ui/").route(web::get().to(index)))
        .service(resource("/ui/{file}").route(web::get().to(asset)));
}

/// Whether a request to `/` comes from a browser that wants a page rather than JSON.
pub fn wants_page(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A redirect to the page (`/` from a browser, and `/ui` without its slash, so relative asset URLs
/// resolve under `/ui/`).
pub fn redirect_to_page() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/ui/"))
        .insert_header((header::VARY, "Accept"))
        .finish()
}

async fn to_page() -> HttpResponse {
    redirect_to_page()
}

async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html")
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    serve(&req, &file)
}

/// An asset with its type and an ETag. `no-cache` makes the browser revalidate, so a new binary's page
/// is used at once while an unchanged one costs a 304.
fn serve(req: &HttpRequest, name: &str) -> HttpResponse {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.name == name) else {
        return ApiError::NotFound(format!("no file `{name}` in the search page")).to_response(0.0);
    };
    let etag = etags()[index].as_str();
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = HttpResponse::build(if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    response
        .insert_header((header::ETAG, HeaderValue::from_str(etag).expect("hex ETag")))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if fresh {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(asset.body)
}

/// Quoted ETags, one per asset in [`ASSETS`] order: a prefix of each body's SHA-256.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}
