//! The hub's checksums: an LFS file's ETag is the SHA-256 of its content, any other file's is
//! its git blob id (SHA-1 over `blob <size>\0` and the content).

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What a file's ETag promises about its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expected {
    Sha256(String),
    GitSha1(String),
}

impl Expected {
    /// The checksum an ETag names, or `None` for one that is neither (a mirror's own tag).
    pub(crate) fn from_etag(etag: &str) -> Option<Self> {
        let hex = etag.len() == 64 || etag.len() == 40;
        if !hex || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let etag = etag.to_ascii_lowercase();
        Some(if etag.len() == 64 {
            Expected::Sha256(etag)
        } else {
            Expected::GitSha1(etag)
        })
    }

    /// A hasher for a file of `size` bytes.
    pub(crate) fn hasher(&self, size: u64) -> Hasher {
        match self {
            Expected::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Expected::GitSha1(_) => {
                let mut h = Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                Hasher::GitSha1(h)
            }
        }
    }

    pub(crate) fn algorithm(&self) -> &'static str {
        match self {
            Expected::Sha256(_) => "sha256",
            Expected::GitSha1(_) => "git sha1",
        }
    }

    pub(crate) fn hex(&self) -> &str {
        match self {
            Expected::Sha256(h) | Expected::GitSha1(h) => h,
        }
    }
}

/// A running hash of a download.
pub(crate) enum Hasher {
    Sha256(Sha256),
    GitSha1(Sha1),
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::GitSha1(h) => h.update(bytes),
        }
    }

    pub(crate) fn finish_hex(self) -> String {
        let bytes = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::GitSha1(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_name_their_algorithm() {
        let sha = "a".repeat(64);
        assert_eq!(Expected::from_etag(&sha), Some(Expected::Sha256(sha)));
        assert_eq!(
            Expected::from_etag("A661B1A138DAC6DC5590367402D100765010FFD6"),
            Some(Expected::GitSha1(
                "a661b1a138dac6dc5590367402d100765010ffd6".into()
            ))
        );
        assert_eq!(Expected::from_etag("abc"), None);
        assert_eq!(Expected::from_etag(&"g".repeat(40)), None);
    }

    #[test]
    fn git_sha1_is_the_blob_id() {
        // A small non-LFS file of a public BERT repository, with the ETag the hub gives it.
        let body = b"{\n  \"do_lower_case\": true\n}\n";
        let want = Expected::from_etag("a661b1a138dac6dc5590367402d100765010ffd6").unwrap();
        let mut h = want.hasher(body.len() as u64);
        h.update(&body[..5]);
        h.update(&body[5..]);
        assert_eq!(h.finish_hex(), want.hex());
    }

    #[test]
    fn sha256_of_content() {
        let want =
            Expected::from_etag("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
                .unwrap();
        let mut h = want.hasher(5);
        h.update(b"hello");
        assert_eq!(h.finish_hex(), want.hex());
    }
}
