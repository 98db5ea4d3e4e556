//! Plain text and Markdown.

use std::path::Path;

use super::DocumentError;

/// The text of `bytes` (a leading byte order mark dropped), or the line where it stops being
/// UTF-8.
pub(super) fn utf8(path: &Path, bytes: &[u8]) -> Result<String, DocumentError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            Err(DocumentError::NotUtf8 {
                path: path.to_path_buf(),
                line,
            })
        }
    }
}

/// The first level-one ATX heading (`# Title`) outside a fenced code block.
pub(super) fn markdown_title(text: &str) -> Option<String> {
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                fence = match fence {
                    None => Some(marker),
                    Some(open) if open == marker => None,
                    open => open,
                };
            }
        }
        if fence.is_some() || line.starts_with("    ") {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('#') {
            if rest.starts_with(' ') || rest.starts_with('\t') {
                let title = rest.trim().trim_end_matches('#').trim();
                if !title.is_empty() {
                    return Some(title.to_string());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_text_and_the_line_where_it_breaks() {
        let p = Path::new("a.txt");
        assert_eq!(utf8(p, b"\xEF\xBB\xBFhello").unwrap(), "hello");
        assert_eq!(utf8(p, "naïve\n".as_bytes()).unwrap(), "naïve\n");
        let err = utf8(p, b"one\ntwo\nthr\xE9e\n").unwrap_err();
        assert!(matches!(err, DocumentError::NotUtf8 { line: 3, .. }));
        assert!(err.to_string().starts_with("a.txt:3: not UTF-8"), "{err}");
    }

    #[test]
    fn markdown_titles() {
        assert_eq!(
            markdown_title("intro\n\n# The Title #\n\n# Second").as_deref(),
            Some("The Title")
        );
        assert_eq!(markdown_title("## Sub only\n#hashtag"), None);
        assert_eq!(
            markdown_title("```sh\n# a comment\n```\n# Real").as_deref(),
            Some("Real")
        );
    }
}
