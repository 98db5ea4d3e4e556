//! Qdrant's built-in `qdrant/bm25` model: text to a sparse vector, with no weights to load.
//!
//! A document becomes, for each distinct token, its BM25 term-frequency saturation
//! `tf·(k+1) / (tf + k·(1 − b + b·len/avg_len))`; a query becomes weight 1 on each distinct token.
//! The inverse document frequency is the collection's part (a sparse vector with `modifier: idf`),
//! so the dot product of the two is the BM25 score. Token ids are the murmur3 32-bit hash (seed 0)
//! of the token's UTF-8 bytes, read as a signed integer and made non-negative, exactly as Qdrant
//! computes them (`lib/bm25` in Qdrant), so vectors made here, by Qdrant, or by FastEmbed agree.

mod options;
#[cfg(test)]
mod tokenizer_tests;

use std::collections::{BTreeMap, HashMap};

pub use options::{Bm25Config, OPTION_NAMES};
pub use quiver_text::{SnowballLanguage, Stopwords, TokenizerKind};

use quiver_text::Analyzer;

/// The names a document's `model` may give this model by (compared ignoring ASCII case), as
/// Qdrant accepts them.
pub const MODEL_NAMES: &[&str] = &["qdrant/bm25", "bm25"];

/// Whether `model` names the built-in BM25 model.
pub fn is_bm25_model(model: &str) -> bool {
    MODEL_NAMES.iter().any(|n| n.eq_ignore_ascii_case(model))
}

/// A sparse vector: distinct dimensions in increasing order, and their weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseEmbedding {
    /// Token ids, sorted, distinct.
    pub indices: Vec<u32>,
    /// One weight per index.
    pub values: Vec<f32>,
}

/// A token's dimension: Qdrant's murmur3 hash, sign dropped.
pub fn token_id(token: &str) -> u32 {
    (murmur3_32(token.as_bytes()) as i32).unsigned_abs()
}

/// murmur3 32-bit with seed 0.
fn murmur3_32(mut bytes: &[u8]) -> u32 {
    murmur3::murmur3_32(&mut bytes, 0).expect("reading a byte slice cannot fail")
}

/// The BM25 encoder for one set of options.
pub struct Bm25 {
    config: Bm25Config,
    analyzer: Analyzer,
}

impl Bm25 {
    /// An encoder with these (checked) options.
    pub fn new(config: Bm25Config) -> Self {
        let analyzer = Analyzer::new(&config.analysis());
        Bm25 { config, analyzer }
    }

    /// The tokens a stored document is indexed by, in text order with repeats.
    pub fn document_tokens(&self, text: &str) -> Vec<String> {
        self.analyzer
            .document_tokens(text)
            .into_iter()
            .map(|t| t.into_owned())
            .collect()
    }

    /// A stored document's vector: each distinct token weighted by its saturated frequency.
    pub fn embed_document(&self, text: &str) -> SparseEmbedding {
        let tokens = self.analyzer.document_tokens(text);
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for token in &tokens {
            *counts.entry(token.as_ref()).or_default() += 1;
        }
        let Bm25Config { k, b, avg_len, .. } = self.config;
        let doc_len = tokens.len() as f64;
        // Computed in f64 with Qdrant's fused multiply-add, then narrowed, so weights match its bits.
        let norm = 1.0 - b + b * doc_len / avg_len;
        let weights: BTreeMap<u32, f32> = counts
            .into_iter()
            .map(|(token, count)| {
                let tf = f64::from(count);
                (
                    token_id(token),
                    (tf * (k + 1.0) / k.mul_add(norm, tf)) as f32,
                )
            })
            .collect();
        SparseEmbedding {
            indices: weights.keys().copied().collect(),
            values: weights.into_values().collect(),
        }
    }

    /// A query's vector: weight 1 on each distinct token.
    pub fn embed_query(&self, text: &str) -> SparseEmbedding {
        let mut indices: Vec<u32> = self
            .analyzer
            .query_tokens(text)
            .iter()
            .map(|t| token_id(t))
            .collect();
        indices.sort_unstable();
        indices.dedup();
        SparseEmbedding {
            values: vec![1.0; indices.len()],
            indices,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_bm25() -> Bm25 {
        Bm25::new(Bm25Config::default())
    }

    #[test]
    fn token_ids_are_the_unsigned_absolute_murmur3_hash() {
        // murmur3_32("hello", 0) = 0x248BFA47 (positive as i32); "the" hashes to a negative i32.
        assert_eq!(token_id("hello"), 0x248B_FA47);
        let raw = murmur3_32(b"the");
        assert!((raw as i32) < 0);
        assert_eq!(token_id("the"), (raw as i32).unsigned_abs());
        assert_eq!(token_id(""), 0);
    }

    #[test]
    fn model_names_match_ignoring_case() {
        assert!(is_bm25_model("qdrant/bm25"));
        assert!(is_bm25_model("Qdrant/Bm25"));
        assert!(is_bm25_model("BM25"));
        assert!(!is_bm25_model("qdrant/bm42"));
    }

    #[test]
    fn document_weights_saturate_term_frequency() {
        let config = Bm25Config {
            avg_len: 5.0,
            ..Bm25Config::default()
        };
        // Tokens: cat cat sat mat (4 of them; "the" and "on" are stop words).
        let v = Bm25::new(config).embed_document("the cat cat sat on the mat");
        let weight = |t: &str| {
            v.indices
                .iter()
                .position(|&i| i == token_id(t))
                .map(|p| v.values[p])
        };
        let norm = 0.25 + 0.75 * 4.0 / 5.0;
        let expect = |tf: f64| (tf * 2.2 / (1.2 * norm + tf)) as f32;
        assert_eq!(weight("cat"), Some(expect(2.0)));
        assert_eq!(weight("sat"), Some(expect(1.0)));
        assert_eq!(weight("mat"), Some(expect(1.0)));
        assert_eq!(v.indices.len(), 3);
        assert!(v.indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn queries_weigh_each_distinct_token_once() {
        let v = default_bm25().embed_query("Cats and cat, running runners");
        // cats, cat -> cat; running -> run; runners -> runner.
        let mut expected: Vec<u32> = ["cat", "run", "runner"]
            .iter()
            .map(|t| token_id(t))
            .collect();
        expected.sort_unstable();
        assert_eq!(v.indices, expected);
        assert_eq!(v.values, [1.0; 3]);
    }

    #[test]
    fn text_without_tokens_is_an_empty_vector() {
        assert_eq!(
            default_bm25().embed_document("the and of !!"),
            SparseEmbedding::default()
        );
        assert_eq!(default_bm25().embed_query("  "), SparseEmbedding::default());
    }

    /// Every case of `tests/fixtures/bm25-goldens.json` (made by `scripts/fixtures/bm25_goldens.py`
    /// from mmh3 and py_rust_stemmers, following Qdrant's pipeline): same tokens, same ids, same
    /// weights.
    #[test]
    fn matches_the_reference_vectors() {
        let goldens: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/bm25-goldens.json"))
                .unwrap();
        let cases = goldens["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 60);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let what = format!("{} / {text:?}", case["about"]);
            let config = Bm25Config::from_options(case["options"].as_object()).unwrap();
            let bm25 = Bm25::new(config);
            let tokens: Vec<String> = serde_json::from_value(case["tokens"].clone()).unwrap();
            assert_eq!(bm25.document_tokens(text), tokens, "{what}");
            let doc = bm25.embed_document(text);
            let indices: Vec<u32> =
                serde_json::from_value(case["document"]["indices"].clone()).unwrap();
            let values: Vec<f32> =
                serde_json::from_value(case["document"]["values"].clone()).unwrap();
            assert_eq!(doc.indices, indices, "{what}");
            for (got, want) in doc.values.iter().zip(&values) {
                // The reference does not fuse the multiply-add: allow the last bit.
                assert!((got - want).abs() <= want * 1e-6, "{what}: {got} vs {want}");
            }
            let query: Vec<u32> = serde_json::from_value(case["query"].clone()).unwrap();
            assert_eq!(bm25.embed_query(text).indices, query, "{what}");
        }
    }
}
