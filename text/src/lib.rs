//! Text to tokens the way Qdrant's full-text tokenizers do it, shared by the built-in `qdrant/bm25`
//! model (the encoder) and the `text` payload index (the engine), so both split, drop stop words and
//! stem alike: Qdrant uses one pipeline for both too.
//!
//! [`Analysis`] is the configuration (Qdrant's tokenizer, `lowercase`, `ascii_folding`, `stopwords`,
//! `stemmer`, `min_token_len`, `max_token_len`); [`parse_stopwords`] and [`parse_stemmer`] read
//! Qdrant's JSON shapes of the two structured ones; [`Analyzer`] runs it.

mod ascii_folding;
mod ascii_folding_table;
mod multilingual;
#[cfg(test)]
mod multilingual_tests;
mod stopwords;
mod tokenizer;

use serde_json::Value;

pub use rust_stemmers::Algorithm as SnowballLanguage;
pub use stopwords::ENGLISH as ENGLISH_STOPWORDS;
pub use tokenizer::Analyzer;

/// How text is split into words (Qdrant's `TokenizerType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenizerKind {
    /// Runs of letters and digits.
    #[default]
    Word,
    /// Runs of non-whitespace.
    Whitespace,
    /// Words, indexed by their prefixes.
    Prefix,
    /// Script- and language-aware words (charabia), normalized: lower case, no diacritics.
    Multilingual,
}

/// Which stop words are dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stopwords {
    /// NLTK's English list.
    pub english: bool,
    /// The caller's own words.
    pub custom: Vec<String>,
}

/// The text pipeline: split, lower-case, drop stop words, stem, bound the length.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// How text is split into words.
    pub tokenizer: TokenizerKind,
    /// Lower-case tokens before the stop-word check and stemming.
    pub lowercase: bool,
    /// Fold letters with diacritics and symbol forms to ASCII first (Qdrant's `ascii_folding`).
    pub ascii_folding: bool,
    /// The stop words dropped.
    pub stopwords: Stopwords,
    /// The Snowball stemmer, if any.
    pub stemmer: Option<SnowballLanguage>,
    /// Tokens shorter than this many characters are dropped.
    pub min_token_len: Option<usize>,
    /// Tokens longer than this many characters are dropped (prefix documents: cut).
    pub max_token_len: Option<usize>,
}

impl Analysis {
    /// Words, lower-cased, nothing dropped or stemmed: Qdrant's full-text index defaults.
    pub fn plain() -> Self {
        Analysis {
            tokenizer: TokenizerKind::Word,
            lowercase: true,
            ascii_folding: false,
            stopwords: Stopwords::default(),
            stemmer: None,
            min_token_len: None,
            max_token_len: None,
        }
    }
}

/// A language's Snowball stemmer, under Qdrant's names and two-letter aliases.
pub fn snowball(language: &str) -> Option<SnowballLanguage> {
    use SnowballLanguage as A;
    Some(match language {
        "arabic" | "ar" => A::Arabic,
        "danish" | "da" => A::Danish,
        "dutch" | "nl" => A::Dutch,
        "english" | "en" => A::English,
        "finnish" | "fi" => A::Finnish,
        "french" | "fr" => A::French,
        "german" | "de" => A::German,
        "greek" | "el" => A::Greek,
        "hungarian" | "hu" => A::Hungarian,
        "italian" | "it" => A::Italian,
        "norwegian" | "no" => A::Norwegian,
        "portuguese" | "pt" => A::Portuguese,
        "romanian" | "ro" => A::Romanian,
        "russian" | "ru" => A::Russian,
        "spanish" | "es" => A::Spanish,
        "swedish" | "sv" => A::Swedish,
        "tamil" | "ta" => A::Tamil,
        "turkish" | "tr" => A::Turkish,
        _ => return None,
    })
}

/// Whether `language` names English, the one stop-word list Quiver has.
pub fn is_english(language: &str) -> bool {
    matches!(language, "english" | "en")
}

/// A stop-word language: only English has a list here.
fn stopword_language(value: &Value) -> Result<(), String> {
    match value.as_str() {
        Some(language) if is_english(language) => Ok(()),
        Some(language) => Err(format!(
            "stop words of `{language}` are not available; Quiver has English (`english`) only"
        )),
        None => Err(format!("a language must be a string, got {value}")),
    }
}

/// Qdrant's `stopwords`: `"english"` or `{"languages": [...], "custom": [...]}`. The error is a
/// message for the caller to prefix with the option's name.
pub fn parse_stopwords(value: &Value) -> Result<Stopwords, String> {
    match value {
        Value::String(_) => {
            stopword_language(value)?;
            Ok(Stopwords {
                english: true,
                custom: Vec::new(),
            })
        }
        Value::Object(set) => {
            let mut out = Stopwords::default();
            for (key, value) in set {
                match (key.as_str(), value) {
                    (_, Value::Null) => {}
                    ("languages", Value::Array(languages)) => {
                        for language in languages {
                            stopword_language(language)?;
                            out.english = true;
                        }
                    }
                    ("custom", Value::Array(words)) => {
                        for word in words {
                            let word = word
                                .as_str()
                                .ok_or_else(|| format!("custom stop words are strings, got {word}"))?;
                            out.custom.push(word.to_string());
                        }
                    }
                    ("languages" | "custom", other) => {
                        return Err(format!("`{key}` must be a list, got {other}"))
                    }
                    (other, _) => {
                        return Err(format!("unknown field `{other}`; known: languages, custom"))
                    }
                }
            }
            Ok(out)
        }
        other => Err(format!(
            "must be a language (\"english\") or {{\"languages\": [...], \"custom\": [...]}}, got {other}"
        )),
    }
}

/// Qdrant's `stemmer`: `{"type": "snowball", "language": "..."}` or `{"type": "none"}`.
pub fn parse_stemmer(value: &Value) -> Result<Option<SnowballLanguage>, String> {
    let shape = || {
        format!(
            "must be {{\"type\": \"snowball\", \"language\": \"...\"}} or {{\"type\": \"none\"}}, got {value}"
        )
    };
    let object = value.as_object().ok_or_else(shape)?;
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "language"))
    {
        return Err(format!("unknown field `{key}`; known: type, language"));
    }
    match object.get("type").and_then(Value::as_str) {
        Some("none") if object.get("language").is_none() => Ok(None),
        Some("snowball") => {
            let language = object
                .get("language")
                .and_then(Value::as_str)
                .ok_or_else(shape)?;
            snowball(language)
                .map(Some)
                .ok_or_else(|| format!("no Snowball stemmer for `{language}`"))
        }
        _ => Err(shape()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stopwords_and_stemmers_read_qdrants_shapes() {
        assert_eq!(
            parse_stopwords(&json!({"languages": ["en"], "custom": ["x"]})).unwrap(),
            Stopwords {
                english: true,
                custom: vec!["x".into()]
            }
        );
        assert!(parse_stopwords(&json!("french"))
            .unwrap_err()
            .contains("`french`"));
        assert_eq!(
            parse_stemmer(&json!({"type": "snowball", "language": "german"})).unwrap(),
            Some(SnowballLanguage::German)
        );
        assert_eq!(parse_stemmer(&json!({"type": "none"})).unwrap(), None);
        assert!(
            parse_stemmer(&json!({"type": "snowball", "language": "klingon"}))
                .unwrap_err()
                .contains("klingon")
        );
    }
}
