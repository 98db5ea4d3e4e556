//! The bytes of an image object: base64 (bare or as a `data:` URL) or, when the server runs with
//! `--image-dir`, a file under that directory. URLs are never fetched: a request must not make the
//! server reach out.

use std::path::Path;

use super::error::{invalid, Error};

/// Largest image file read from `--image-dir` (the decoder's own byte limit).
const MAX_IMAGE_FILE_BYTES: u64 = 32 << 20;

/// The bytes of an image object's `image`. A file is named by `file://…` or by a path: base64 has no
/// `.`, a file name almost always does.
pub(crate) fn image_bytes(text: &str, image_dir: Option<&Path>) -> Result<Vec<u8>, Error> {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err(invalid(
            "image URLs are not fetched by the server: send the image file as base64",
        ));
    }
    if let Some(rest) = text.strip_prefix("data:") {
        return match rest.split_once(";base64,") {
            Some((_, data)) => {
                crate::base64::decode(data).map_err(|e| invalid(format!("`image`: {e}")))
            }
            None => Err(invalid("a data: URL image must be base64 (`;base64,`)")),
        };
    }
    let path = match text.strip_prefix("file://") {
        Some(path) => Some(path),
        None => text.contains('.').then_some(text),
    };
    let Some(path) = path else {
        return crate::base64::decode(text).map_err(|e| invalid(format!("`image`: {e}")));
    };
    let Some(root) = image_dir else {
        return Err(invalid(format!(
            "`image` {path:?} looks like a file path; the server reads image files only when it \
             runs with --image-dir: send the image file as base64"
        )));
    };
    read_image_file(root, path)
}

/// Reads `path` (relative to `root`, or absolute inside it) after resolving links, so nothing outside
/// `root` can be named.
pub fn read_image_file(root: &Path, path: &str) -> Result<Vec<u8>, Error> {
    let missing = || invalid(format!("`image`: no file {path:?} under --image-dir"));
    let resolved = std::fs::canonicalize(root.join(path)).map_err(|_| missing())?;
    if !resolved.starts_with(root) {
        return Err(invalid(format!("`image`: {path:?} is outside --image-dir")));
    }
    let meta = std::fs::metadata(&resolved).map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    if meta.len() > MAX_IMAGE_FILE_BYTES {
        return Err(invalid(format!(
            "`image`: {path:?} is {} bytes, over the {MAX_IMAGE_FILE_BYTES}-byte limit",
            meta.len()
        )));
    }
    std::fs::read(&resolved).map_err(|e| invalid(format!("`image`: {path:?}: {e}")))
}
