//! Qdrant's `ascii_folding`: letters with diacritics, ligatures and symbol forms written in ASCII
//! (`ação` → `acao`, `Æsop` → `AEsop`, `straße` → `strasse`, `①` → `1`), before lower-casing. The
//! table is Qdrant's (Lucene's ASCIIFoldingFilter mapping), read from Qdrant Edge by
//! `scripts/ascii_folding_table.py`.

use std::borrow::Cow;

use crate::ascii_folding_table::FOLDS;

/// `token` with every character the table holds replaced by its ASCII form.
pub(crate) fn fold(token: Cow<'_, str>) -> Cow<'_, str> {
    if token.is_ascii() {
        return token;
    }
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match FOLDS.binary_search_by_key(&c, |&(from, _)| from) {
            Ok(at) => out.push_str(FOLDS[at].1),
            Err(_) => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_as_qdrant_does() {
        assert!(
            FOLDS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted for the search"
        );
        let folded = |s: &str| fold(Cow::Borrowed(s)).into_owned();
        assert_eq!(folded("ação café jalapeño Über"), "acao cafe jalapeno Uber");
        assert_eq!(folded("Æsop and Œuvre"), "AEsop and OEuvre");
        assert_eq!(folded("straße Łódź"), "strasse Lodz");
        assert_eq!(folded("“quote” — test １②⒊"), "\"quote\" - test 123.");
        assert_eq!(folded("日本語のテキスト"), "日本語のテキスト");
    }
}
