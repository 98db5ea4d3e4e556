//! Downloading a snapshot named by an `http(s)://` recover location, guarded against server-side
//! request forgery. Off unless `--snapshot-url-recovery` is given. Even then every host name is
//! resolved here and the request fails if any of its addresses is loopback, private, link-local or
//! otherwise not globally routable (unless `--snapshot-url-allow-private`). The connection goes to the
//! addresses that were checked (no second lookup an attacker's DNS could answer differently), each
//! redirect is resolved and checked the same way, and proxies from the environment are ignored so a
//! proxy cannot reach what the check refused.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::error::{bad_request, ApiError};

/// What a recover location may fetch.
#[derive(Clone, Copy, Debug, Default)]
pub struct UrlPolicy {
    /// `http(s)://` locations are accepted at all.
    pub enabled: bool,
    /// Addresses that are not globally routable may be reached (a trusted internal network).
    pub allow_private: bool,
}

/// Redirects followed before giving up.
const MAX_REDIRECTS: u32 = 5;
/// A download that receives nothing for this long is abandoned.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Resolution plus TCP and TLS set-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether `location` asks for a download.
pub fn is_url(location: &str) -> bool {
    let lower = location.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Whether `ip` is reachable on the public internet. Written out rather than taken from `std`, whose
/// `is_global` is unstable; the ranges are IANA's special-purpose registries.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network"
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 169 && b == 254)              // link-local (cloud metadata lives here)
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 and 6to4 carry an IPv4 address that the packet ends up at.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0]  // IPv4-compatible (deprecated) and other ::/96
        || (s[0] & 0xfe00) == 0xfc00      // unique local
        || (s[0] & 0xffc0) == 0xfe80      // link-local
        || (s[0] & 0xffc0) == 0xfec0      // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00      // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only
}

/// Resolves like ureq's default resolver, then refuses hosts with any non-public address.
struct GuardedResolver {
    inner: DefaultResolver,
    allow_private: bool,
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if !self.allow_private {
            if let Some(addr) = addrs.iter().find(|addr| !is_public(addr.ip())) {
                let host = uri.host().unwrap_or_default();
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "host {host:?} resolves to {}, which is not a public address; snapshot \
                         downloads reach private, loopback and link-local addresses only when the \
                         server runs with --snapshot-url-allow-private",
                        addr.ip()
                    ),
                )));
            }
        }
        Ok(addrs)
    }
}

/// Downloads `url` into a new file inside `dir` (named by the caller) and returns it, refusing more
/// than `limit` bytes. Blocking: call from a blocking task.
pub fn download(
    url: &str,
    policy: UrlPolicy,
    path: &Path,
    limit: u64,
) -> Result<PathBuf, ApiError> {
    if !policy.enabled {
        return Err(bad_request(
            "recovering from a URL is disabled: start the server with --snapshot-url-recovery, \
             upload the snapshot, or place it in the snapshot directory and pass its name",
        ));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| bad_request(format!("location {url:?} is not a valid URL: {e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad_request(format!("location {url:?} names no host")));
    }
    let config = ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(MAX_REDIRECTS)
        .http_status_as_error(false)
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .build();
    let resolver = GuardedResolver {
        inner: DefaultResolver::default(),
        allow_private: policy.allow_private,
    };
    let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), resolver);
    let fetch_error = |e: ureq::Error| match e {
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::PermissionDenied => {
            ApiError::Refused(io.to_string())
        }
        other => bad_request(format!("could not download snapshot from {url:?}: {other}")),
    };
    let response = agent.get(url).call().map_err(fetch_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(bad_request(format!(
            "could not download snapshot from {url:?}: the server answered {status}"
        )));
    }
    if let Some(length) = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length > limit {
            return Err(too_large(limit));
        }
    }
    let io_err =
        |e: io::Error| -> ApiError { ApiError::Engine(quiver_storage::Error::io(path, e).into()) };
    let mut file = File::create_new(path).map_err(io_err)?;
    let mut reader = response.into_body().into_reader().take(limit + 1);
    let mut buf = vec![0u8; 1 << 18];
    let mut written = 0u64;
    let result = (|| -> Result<(), ApiError> {
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(bad_request(format!(
                        "could not download snapshot from {url:?}: {e}"
                    )))
                }
            };
            written += n as u64;
            if written > limit {
                return Err(too_large(limit));
            }
            file.write_all(&buf[..n]).map_err(io_err)?;
        }
        file.sync_all().map_err(io_err)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    tracing::info!(url, bytes = written, "snapshot downloaded");
    Ok(path.to_path_buf())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge {
        limit: limit.try_into().unwrap_or(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.7",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "2001:db8::1",
            "::127.0.0.1",
        ];
        for ip in private {
            assert!(
                !is_public(ip.parse().unwrap()),
                "{ip} must not count as public"
            );
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ];
        for ip in public {
            assert!(is_public(ip.parse().unwrap()), "{ip} must count as public");
        }
    }

    #[test]
    fn urls_are_refused_unless_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let err = download(
            "http://example.com/a.snapshot",
            UrlPolicy::default(),
            &dir.path().join("x"),
            1 << 20,
        )
        .unwrap_err();
        assert_eq!(err.status(), actix_web::http::StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("--snapshot-url-recovery"), "{err}");
    }

    #[test]
    fn names_that_resolve_to_loopback_are_refused_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let policy = UrlPolicy {
            enabled: true,
            allow_private: false,
        };
        for url in [
            "http://localhost:9/a.snapshot",
            "http://127.0.0.1:9/a.snapshot",
            "http://[::1]:9/a.snapshot",
            "http://2130706433:9/a.snapshot",
        ] {
            let err = download(url, policy, &dir.path().join("x"), 1 << 20).unwrap_err();
            assert_eq!(
                err.status(),
                actix_web::http::StatusCode::FORBIDDEN,
                "{url}: {err}"
            );
            assert!(err.to_string().contains("not a public address"), "{err}");
        }
        assert!(!dir.path().join("x").exists());
    }
}
