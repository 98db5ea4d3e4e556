//! A `qdrant/bm25` document's `options`, read under Qdrant's names (`Bm25Config` and
//! `TextPreprocessingConfig` in Qdrant's REST schema) with Qdrant's defaults. What Quiver does not
//! implement — stop words of languages other than English — is refused by name, never accepted and
//! ignored.

use quiver_text::{is_english, parse_stemmer, parse_stopwords, snowball, Analysis};
use quiver_text::{SnowballLanguage as Algorithm, Stopwords, TokenizerKind};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Every option Qdrant's `qdrant/bm25` takes.
pub const OPTION_NAMES: &[&str] = &[
    "k",
    "b",
    "avg_len",
    "tokenizer",
    "language",
    "lowercase",
    "ascii_folding",
    "stopwords",
    "stemmer",
    "min_token_len",
    "max_token_len",
];

/// BM25 settings of one document: term-frequency saturation and the text pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Bm25Config {
    /// Term-frequency saturation (`k1`); at least 0.
    pub k: f64,
    /// Length normalisation, from 0 (none) to 1 (full).
    pub b: f64,
    /// The expected average document length, in tokens; above 0.
    pub avg_len: f64,
    /// How text is split into words.
    pub tokenizer: TokenizerKind,
    /// Lower-case tokens before the stop-word check and stemming.
    pub lowercase: bool,
    /// Fold letters with diacritics and symbol forms to ASCII first.
    pub ascii_folding: bool,
    /// The stop words dropped.
    pub stopwords: Stopwords,
    /// The Snowball stemmer, if any.
    pub stemmer: Option<Algorithm>,
    /// Tokens shorter than this many characters are dropped.
    pub min_token_len: Option<usize>,
    /// Tokens longer than this many characters are dropped (prefix documents: cut).
    pub max_token_len: Option<usize>,
}

impl Default for Bm25Config {
    /// Qdrant's defaults: k 1.2, b 0.75, avg_len 256, the word tokenizer, English.
    fn default() -> Self {
        Bm25Config {
            k: 1.2,
            b: 0.75,
            avg_len: 256.0,
            tokenizer: TokenizerKind::Word,
            lowercase: true,
            ascii_folding: false,
            stopwords: Stopwords {
                english: true,
                custom: Vec::new(),
            },
            stemmer: Some(Algorithm::English),
            min_token_len: None,
            max_token_len: None,
        }
    }
}

fn bad(option: &str, message: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("qdrant/bm25 option `{option}`: {message}"))
}

fn number(option: &str, value: &Value, ok: impl Fn(f64) -> bool, want: &str) -> Result<f64> {
    value
        .as_f64()
        .filter(|x| x.is_finite() && ok(*x))
        .ok_or_else(|| bad(option, format!("must be {want}, got {value}")))
}

fn flag(option: &str, value: &Value) -> Result<bool> {
    value
        .as_bool()
        .ok_or_else(|| bad(option, format!("must be true or false, got {value}")))
}

fn length(option: &str, value: &Value) -> Result<usize> {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            bad(
                option,
                format!("must be a non-negative integer, got {value}"),
            )
        })
}

impl Bm25Config {
    /// The text pipeline of these options.
    pub fn analysis(&self) -> Analysis {
        Analysis {
            tokenizer: self.tokenizer,
            lowercase: self.lowercase,
            ascii_folding: self.ascii_folding,
            stopwords: self.stopwords.clone(),
            stemmer: self.stemmer,
            min_token_len: self.min_token_len,
            max_token_len: self.max_token_len,
        }
    }

    /// Reads a document's `options` (absent: every default). `language` (default `english`)
    /// chooses the default stop words and stemmer; `"none"` turns both off; `stopwords` and
    /// `stemmer` override it. A `null` value leaves an option at its default, as in Qdrant.
    pub fn from_options(options: Option<&Map<String, Value>>) -> Result<Self> {
        let mut config = Bm25Config::default();
        let options = options.into_iter().flatten().filter(|(_, v)| !v.is_null());
        let (mut language, mut stopwords_set, mut stemmer_set) = (None, None, None);
        for (key, value) in options {
            let option = key.as_str();
            match option {
                "k" => config.k = number(option, value, |x| x >= 0.0, "a number >= 0")?,
                "b" => config.b = number(option, value, |x| (0.0..=1.0).contains(&x), "in [0, 1]")?,
                "avg_len" => config.avg_len = number(option, value, |x| x > 0.0, "a number > 0")?,
                "tokenizer" => {
                    config.tokenizer = match value.as_str() {
                        Some("word") => TokenizerKind::Word,
                        Some("whitespace") => TokenizerKind::Whitespace,
                        Some("prefix") => TokenizerKind::Prefix,
                        Some("multilingual") => TokenizerKind::Multilingual,
                        _ => {
                            return Err(bad(
                                option,
                                format!(
                                    "must be word, whitespace, prefix or multilingual, got {value}"
                                ),
                            ))
                        }
                    }
                }
                "language" => {
                    let name = value
                        .as_str()
                        .ok_or_else(|| bad(option, format!("must be a string, got {value}")))?;
                    language = Some(name.to_string());
                }
                "lowercase" => config.lowercase = flag(option, value)?,
                "ascii_folding" => config.ascii_folding = flag(option, value)?,
                "stopwords" => {
                    stopwords_set = Some(parse_stopwords(value).map_err(|e| bad(option, e))?)
                }
                "stemmer" => stemmer_set = Some(parse_stemmer(value).map_err(|e| bad(option, e))?),
                "min_token_len" => config.min_token_len = Some(length(option, value)?),
                "max_token_len" => config.max_token_len = Some(length(option, value)?),
                other => {
                    return Err(Error::InvalidInput(format!(
                        "unknown qdrant/bm25 option `{other}`; known: {}",
                        OPTION_NAMES.join(", ")
                    )))
                }
            }
        }
        // The language only supplies defaults (stop words, stemmer); explicit ones override them.
        if let Some(language) = language {
            if language == "none" {
                config.stopwords = Stopwords::default();
                config.stemmer = None;
            } else if !is_english(&language) {
                if stopwords_set.is_none() {
                    return Err(bad(
                        "language",
                        format!(
                            "stop words of `{language}` are not available: Quiver has English \
                             ones only; use `english` or `none`, or give `stopwords`"
                        ),
                    ));
                }
                // As in Qdrant, a language without a Snowball stemmer stems nothing.
                config.stemmer = snowball(&language);
            }
        }
        if let Some(set) = stopwords_set {
            config.stopwords = set;
        }
        if let Some(stemmer) = stemmer_set {
            config.stemmer = stemmer;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(options: Value) -> Result<Bm25Config> {
        Bm25Config::from_options(options.as_object())
    }

    #[test]
    fn no_options_are_qdrants_defaults() {
        let config = Bm25Config::from_options(None).unwrap();
        assert_eq!(config, Bm25Config::default());
        assert_eq!((config.k, config.b, config.avg_len), (1.2, 0.75, 256.0));
        assert_eq!(parse(json!({"k": null})).unwrap(), config);
    }

    #[test]
    fn options_set_what_they_name() {
        let config = parse(json!({
            "k": 2, "b": 0.5, "avg_len": 10.0, "tokenizer": "whitespace", "lowercase": false,
            "ascii_folding": false, "min_token_len": 2, "max_token_len": 9,
            "stopwords": {"custom": ["foo"]}, "stemmer": {"type": "snowball", "language": "de"}
        }))
        .unwrap();
        assert_eq!((config.k, config.b, config.avg_len), (2.0, 0.5, 10.0));
        assert_eq!(config.tokenizer, TokenizerKind::Whitespace);
        assert!(!config.lowercase);
        assert_eq!(
            config.stopwords,
            Stopwords {
                english: false,
                custom: vec!["foo".into()]
            }
        );
        assert_eq!(config.stemmer, Some(Algorithm::German));
        assert_eq!(
            (config.min_token_len, config.max_token_len),
            (Some(2), Some(9))
        );
    }

    #[test]
    fn multilingual_is_qdrants_charabia_tokenizer() {
        let config = parse(json!({"tokenizer": "multilingual"})).unwrap();
        assert_eq!(config.tokenizer, TokenizerKind::Multilingual);
        let analyzer = quiver_text::Analyzer::new(&config.analysis());
        // English stop words and stems apply to the normalized words; Chinese is cut by jieba.
        assert_eq!(
            analyzer.document_tokens("Les Äpfel running, 今天是星期一"),
            ["les", "apfel", "run", "今天", "是", "星期", "一"]
        );
        let folding = parse(json!({"ascii_folding": true, "language": "none"})).unwrap();
        assert!(folding.ascii_folding);
        let analyzer = quiver_text::Analyzer::new(&folding.analysis());
        assert_eq!(
            analyzer.document_tokens("Straße Œuvre"),
            ["strasse", "oeuvre"]
        );
    }

    #[test]
    fn language_none_turns_off_stop_words_and_stemming() {
        let config = parse(json!({"language": "none"})).unwrap();
        assert_eq!(config.stopwords, Stopwords::default());
        assert_eq!(config.stemmer, None);
        let config = parse(json!({"stemmer": {"type": "none"}})).unwrap();
        assert!(config.stopwords.english);
        assert_eq!(config.stemmer, None);
    }

    #[test]
    fn what_quiver_does_not_implement_is_refused_by_name() {
        for (options, named) in [
            (json!({"tokenizer": "letters"}), "`tokenizer`"),
            (json!({"ascii_folding": "yes"}), "`ascii_folding`"),
            (json!({"language": "german"}), "`language`"),
            (json!({"stopwords": "french"}), "`stopwords`"),
            (
                json!({"stopwords": {"languages": ["en", "es"]}}),
                "`stopwords`",
            ),
            (
                json!({"stemmer": {"type": "snowball", "language": "klingon"}}),
                "`stemmer`",
            ),
            (json!({"task": "retrieval"}), "`task`"),
            (json!({"k": -1}), "`k`"),
            (json!({"b": 1.5}), "`b`"),
            (json!({"avg_len": 0}), "`avg_len`"),
            (json!({"min_token_len": -2}), "`min_token_len`"),
            (json!({"lowercase": "yes"}), "`lowercase`"),
        ] {
            let err = parse(options.clone()).unwrap_err().to_string();
            assert!(err.contains(named), "{options}: {err}");
        }
        // Another language is fine once its stop words are given: it picks the stemmer.
        let config = parse(json!({"language": "de", "stopwords": {"custom": ["und"]}})).unwrap();
        assert_eq!(config.stemmer, Some(Algorithm::German));
        assert_eq!(config.stopwords.custom, ["und"]);
    }
}
