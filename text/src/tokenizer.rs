//! Text to tokens the way Qdrant's full-text tokenizers do it (`lib/segment/.../tokenizers`): split
//! into words, then each word goes through the same steps in the same order — lower-case, drop stop
//! words, Snowball-stem, drop tokens outside the length bounds. BM25 token ids hash the result, so
//! any difference in order or rule would give other ids than Qdrant's.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::OnceLock;

use rust_stemmers::Stemmer;

use crate::multilingual::Piece;
use crate::{Analysis, TokenizerKind};

/// NLTK's English list as a set, built once: an analyzer is cheap to make per query.
fn english() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| crate::stopwords::ENGLISH.iter().copied().collect())
}

/// An [`Analysis`], ready to run.
pub struct Analyzer {
    tokenizer: TokenizerKind,
    lowercase: bool,
    ascii_folding: bool,
    english: bool,
    /// Lower-cased when `lowercase` is set, so that they match lower-cased tokens; exact otherwise.
    custom: HashSet<String>,
    stemmer: Option<Stemmer>,
    min_len: Option<usize>,
    max_len: Option<usize>,
}

impl Analyzer {
    /// Runs `analysis`.
    pub fn new(analysis: &Analysis) -> Self {
        let case = |w: &str| {
            if analysis.lowercase {
                w.to_lowercase()
            } else {
                w.to_string()
            }
        };
        Analyzer {
            tokenizer: analysis.tokenizer,
            lowercase: analysis.lowercase,
            ascii_folding: analysis.ascii_folding,
            english: analysis.stopwords.english,
            custom: analysis.stopwords.custom.iter().map(|w| case(w)).collect(),
            stemmer: analysis.stemmer.map(Stemmer::create),
            min_len: analysis.min_token_len,
            max_len: analysis.max_token_len,
        }
    }

    /// The tokenizer it splits with.
    pub fn tokenizer(&self) -> TokenizerKind {
        self.tokenizer
    }

    /// Folding to ASCII, then lower case: Qdrant's first two steps.
    fn fold_lower<'a>(&self, token: Cow<'a, str>) -> Cow<'a, str> {
        let token = if self.ascii_folding {
            crate::ascii_folding::fold(token)
        } else {
            token
        };
        self.lower(token)
    }

    fn lower<'a>(&self, token: Cow<'a, str>) -> Cow<'a, str> {
        if self.lowercase {
            Cow::Owned(token.to_lowercase())
        } else {
            token
        }
    }

    fn stem<'a>(&self, token: Cow<'a, str>) -> Cow<'a, str> {
        match &self.stemmer {
            // The stem borrows from `token`, which is returned in its place.
            Some(stemmer) => Cow::Owned(stemmer.stem(&token).into_owned()),
            None => token,
        }
    }

    fn is_stopword(&self, token: &str) -> bool {
        // The English list is lower case: without lower-casing it matches only lower-case words.
        (self.english && english().contains(token)) || self.custom.contains(token)
    }

    /// One word through every step; `None` when it is dropped. Prefix documents skip the upper
    /// length bound: their words are cut into prefixes of at most that length instead.
    fn process<'a>(&self, word: &'a str, check_max: bool) -> Option<Cow<'a, str>> {
        self.process_cow(Cow::Borrowed(word), check_max)
    }

    fn process_cow<'a>(&self, word: Cow<'a, str>, check_max: bool) -> Option<Cow<'a, str>> {
        if word.is_empty() {
            return None;
        }
        let token = self.fold_lower(word);
        if self.is_stopword(token.as_ref()) {
            return None;
        }
        let token = self.stem(token);
        let chars = token.chars().count();
        let short = self.min_len.is_some_and(|min| chars < min);
        let long = check_max && self.max_len.is_some_and(|max| chars > max);
        (!short && !long).then_some(token)
    }

    /// A piece of the `multilingual` tokenizer through the steps it still has to take.
    fn process_piece<'a>(&self, piece: Piece<'a>) -> Option<Cow<'a, str>> {
        match piece {
            Piece::Lemma(lemma) => self.process_cow(lemma, true),
            // As Qdrant: the stop words see the word as written, and nothing but case follows.
            Piece::Surface(word) => {
                (!self.is_stopword(word)).then(|| self.lower(Cow::Borrowed(word)))
            }
        }
    }

    fn multilingual<'a>(&self, text: &'a str) -> Vec<Cow<'a, str>> {
        crate::multilingual::pieces(text)
            .into_iter()
            .filter_map(|piece| self.process_piece(piece))
            .collect()
    }

    /// The words of a stored text through every step, in text order with repeats; the prefix
    /// tokenizer splits as `word` here (see [`Analyzer::document_tokens`] for its prefixes).
    pub fn words<'a>(&self, text: &'a str) -> Vec<Cow<'a, str>> {
        match self.tokenizer {
            TokenizerKind::Multilingual => self.multilingual(text),
            TokenizerKind::Whitespace => text
                .split_whitespace()
                .filter_map(|w| self.process(w, true))
                .collect(),
            TokenizerKind::Word => words(text).filter_map(|w| self.process(w, true)).collect(),
            TokenizerKind::Prefix => words(text).filter_map(|w| self.process(w, false)).collect(),
        }
    }

    /// The tokens a stored document is indexed by.
    pub fn document_tokens<'a>(&self, text: &'a str) -> Vec<Cow<'a, str>> {
        tokenize_doc(self, text)
    }

    /// The tokens of a query.
    pub fn query_tokens<'a>(&self, text: &'a str) -> Vec<Cow<'a, str>> {
        tokenize_query(self, text)
    }
}

/// Words: runs of alphanumeric characters (Unicode letters and digits), as Qdrant's `word`
/// tokenizer splits them; `don't` is `don` and `t`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
}

/// The tokens of a stored document.
fn tokenize_doc<'a>(p: &Analyzer, text: &'a str) -> Vec<Cow<'a, str>> {
    match p.tokenizer {
        TokenizerKind::Multilingual => p.multilingual(text),
        TokenizerKind::Word => words(text).filter_map(|w| p.process(w, true)).collect(),
        TokenizerKind::Whitespace => text
            .split_whitespace()
            .filter_map(|w| p.process(w, true))
            .collect(),
        TokenizerKind::Prefix => {
            // Every prefix from `min_token_len` (default 1) to `max_token_len` characters, the
            // whole word when it is shorter.
            let min = p.min_len.unwrap_or(1);
            let max = p.max_len.unwrap_or(usize::MAX);
            let mut out = Vec::new();
            for word in words(text).filter_map(|w| p.process(w, false)) {
                for n in min..=max {
                    match word.char_indices().nth(n) {
                        Some((end, _)) => out.push(Cow::Owned(word[..end].to_string())),
                        None => {
                            out.push(word);
                            break;
                        }
                    }
                }
            }
            out
        }
    }
}

/// The tokens of a query. Only the prefix tokenizer differs from documents: it keeps stop words
/// (a query may be a word still being typed) and cuts each word to its longest indexed prefix.
fn tokenize_query<'a>(p: &Analyzer, text: &'a str) -> Vec<Cow<'a, str>> {
    match p.tokenizer {
        TokenizerKind::Word | TokenizerKind::Whitespace | TokenizerKind::Multilingual => {
            tokenize_doc(p, text)
        }
        TokenizerKind::Prefix => {
            let max = p.max_len.unwrap_or(usize::MAX);
            words(text)
                .filter(|w| !w.is_empty())
                .filter_map(|w| {
                    let word = p.stem(p.fold_lower(Cow::Borrowed(w)));
                    if p.min_len.is_some_and(|min| word.chars().count() < min) {
                        return None;
                    }
                    Some(match word.char_indices().nth(max) {
                        Some((end, _)) => Cow::Owned(word[..end].to_string()),
                        None => word,
                    })
                })
                .collect()
        }
    }
}
