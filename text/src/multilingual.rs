//! Qdrant's `multilingual` tokenizer: the script (and, outside Latin, the language) of the whole
//! text picks how it is cut. Latin and every other script go through charabia's segmenter and its
//! lossy normalizer (lower case, compatibility decomposition, diacritics dropped), and a piece whose
//! lemma holds no letter is skipped, as Qdrant does. Japanese is where Quiver differs: Qdrant cuts it
//! with vaporetto and a model compiled into its binary, which Quiver does not ship (see
//! [`japanese`]).

use std::borrow::Cow;

use charabia::normalizer::{ClassifierOption, NormalizerOption};
use charabia::{Language, Script, Segment, StrDetection};

/// charabia's own `tokenize()` options, the ones Qdrant normalizes with.
const LOSSY: NormalizerOption = NormalizerOption {
    create_char_map: false,
    lossy: true,
    classifier: ClassifierOption {
        stop_words: None,
        separators: None,
    },
};

/// The languages the detector may answer (Qdrant's list: those with a Snowball stemmer, plus
/// Chinese and Japanese), so that the same text takes the same path as in Qdrant.
const DETECTABLE: &[Language] = &[
    Language::Eng,
    Language::Rus,
    Language::Por,
    Language::Ita,
    Language::Deu,
    Language::Ara,
    Language::Dan,
    Language::Swe,
    Language::Fin,
    Language::Tur,
    Language::Nld,
    Language::Hun,
    Language::Ell,
    Language::Tam,
    Language::Ron,
    Language::Cmn,
    Language::Jpn,
];

/// A piece of text and the steps it still has to go through.
pub(crate) enum Piece<'a> {
    /// A normalized lemma: every step of the pipeline follows.
    Lemma(Cow<'a, str>),
    /// A Japanese word as written: Qdrant checks it against the stop words before lower-casing,
    /// then only lower-cases it (no folding, stemming or length bounds).
    Surface(&'a str),
}

/// The pieces of `text`, in order, pieces without a letter already dropped.
pub(crate) fn pieces(text: &str) -> Vec<Piece<'_>> {
    let script = StrDetection::new(text, Some(DETECTABLE)).script();
    if script != Script::Latin
        && StrDetection::new(text, Some(DETECTABLE)).language() == Some(Language::Jpn)
    {
        return japanese(text).into_iter().map(Piece::Surface).collect();
    }
    text.segment()
        .normalize(&LOSSY)
        .map(|token| token.lemma)
        .filter(|lemma| lemma.chars().any(char::is_alphabetic))
        .map(Piece::Lemma)
        .collect()
}

/// How a character groups with its neighbours in Japanese text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Kanji,
    Hiragana,
    Katakana,
    /// Letters and digits of other scripts (a Latin name inside Japanese text).
    Other,
    /// Punctuation and spaces: never part of a word.
    Gap,
}

fn class(c: char) -> Class {
    match c {
        // The katakana middle dot separates words.
        '\u{30FB}' => Class::Gap,
        '\u{3005}' | '\u{3007}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' => Class::Kanji,
        '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3134F}' => Class::Kanji,
        '\u{3041}'..='\u{309F}' => Class::Hiragana,
        '\u{30A0}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}' => {
            Class::Katakana
        }
        c if c.is_alphanumeric() => Class::Other,
        _ => Class::Gap,
    }
}

/// Japanese without a Japanese model: runs of one kind of character, and kanji runs cut further by
/// charabia's Chinese dictionary (jieba), which knows most kanji compounds. Katakana words come out
/// as Qdrant's do; a hiragana run (particles and inflections written together, `されています`) stays
/// one word where vaporetto cuts it into morphemes.
fn japanese(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut current = Class::Gap;
    for (at, c) in text.char_indices() {
        let kind = class(c);
        if kind != current {
            run(&text[start..at], current, &mut out);
            start = at;
            current = kind;
        }
    }
    run(&text[start..], current, &mut out);
    out
}

/// The words of one run of `kind` characters.
fn run<'a>(run: &'a str, kind: Class, out: &mut Vec<&'a str>) {
    let letters = |w: &&str| w.chars().any(char::is_alphabetic);
    match kind {
        Class::Gap => {}
        Class::Kanji => out.extend(
            run.segment_str_with_option(None, Some(&[Language::Cmn]))
                .filter(letters),
        ),
        Class::Hiragana | Class::Katakana | Class::Other => out.extend(Some(run).filter(letters)),
    }
}
