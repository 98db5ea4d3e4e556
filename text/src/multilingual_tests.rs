//! The `multilingual` tokenizer against Qdrant's, as recorded from Qdrant Edge by
//! `scripts/multilingual_parity.py` (`testdata/multilingual_parity.json`): the tokens of each
//! sentence under five pipelines (ASCII folding among them), and which sentences each `match.text`
//! query finds.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Analysis, Analyzer, SnowballLanguage, Stopwords, TokenizerKind};

const FIXTURE: &str = include_str!("../testdata/multilingual_parity.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("the fixture is JSON")
}

fn analyzer(config: &Value) -> Analyzer {
    let english = |key: &str| config[key].as_str() == Some("english");
    Analyzer::new(&Analysis {
        tokenizer: TokenizerKind::Multilingual,
        lowercase: config["lowercase"].as_bool().expect("lowercase"),
        ascii_folding: config["ascii_folding"].as_bool().unwrap_or(false),
        stopwords: Stopwords {
            english: english("stopwords"),
            custom: Vec::new(),
        },
        stemmer: english("stemmer").then_some(SnowballLanguage::English),
        min_token_len: config["min_token_len"].as_u64().map(|n| n as usize),
        max_token_len: None,
    })
}

fn counts(tokens: Vec<std::borrow::Cow<'_, str>>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for token in tokens {
        *out.entry(token.into_owned()).or_default() += 1;
    }
    out
}

/// Japanese is cut by vaporetto in Qdrant, by script runs and a Chinese dictionary here.
fn japanese(text: &str) -> bool {
    text.chars().any(|c| matches!(c, '\u{3041}'..='\u{30FF}'))
}

#[test]
fn tokens_are_qdrants_outside_japanese() {
    let fixture = fixture();
    let mut compared = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let config = &fixture["configs"][case["config"].as_str().unwrap()];
        let got = counts(analyzer(config).document_tokens(text));
        let want: BTreeMap<String, u64> =
            serde_json::from_value(case["tokens"].clone()).expect("token counts");
        if japanese(text) {
            // What Quiver promises there: katakana words are Qdrant's.
            let katakana = |w: &&String| w.chars().all(|c| ('\u{30A0}'..='\u{30FF}').contains(&c));
            for word in want.keys().filter(katakana) {
                assert!(
                    got.contains_key(word),
                    "{text:?}: {word:?} missing from {got:?}"
                );
            }
            continue;
        }
        assert_eq!(got, want, "{text:?} under {}", case["config"]);
        compared += 1;
    }
    assert!(compared >= 90, "only {compared} cases compared");
}

#[test]
fn text_matches_find_qdrants_sentences() {
    let fixture = fixture();
    let analyzer = analyzer(&fixture["configs"]["plain"]);
    let sentences: Vec<Vec<String>> = fixture["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let words = analyzer.words(s.as_str().unwrap());
            words.into_iter().map(|w| w.into_owned()).collect()
        })
        .collect();
    for case in fixture["matches"].as_array().unwrap() {
        let query = case["query"].as_str().unwrap();
        let want: Vec<u64> = serde_json::from_value(case["sentences"].clone()).unwrap();
        let tokens = analyzer.query_tokens(query);
        let got: Vec<u64> = (0..sentences.len() as u64)
            .filter(|&i| {
                let words = &sentences[i as usize];
                !tokens.is_empty() && tokens.iter().all(|t| words.iter().any(|w| w == t))
            })
            .collect();
        assert_eq!(got, want, "match.text {query:?}");
    }
}

#[test]
fn qdrants_own_examples() {
    let plain = analyzer(&fixture()["configs"]["plain"]);
    let words = |text: &str| -> Vec<String> {
        plain
            .words(text)
            .into_iter()
            .map(|w| w.into_owned())
            .collect()
    };
    assert_eq!(
        words("This is english text. It's being used within Qdrant's code in a unit test.")
            .join("|"),
        "this|is|english|text|it|s|being|used|within|qdrant|s|code|in|a|unit|test"
    );
    assert_eq!(words("Dies ist ein Test").join("|"), "dies|ist|ein|test");
    assert_eq!(words("今天是星期一").join("|"), "今天|是|星期|一");
    assert_eq!(words("มาทำงานกันเถอะ").join("|"), "มา|ทางาน|กน|เถอะ");
    // Japanese: Qdrant gives これ|は|テスト|です.
    assert_eq!(words("これはテストです").join("|"), "これは|テスト|です");
}
