use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};

use super::*;
use crate::documents::{Document, Page};

/// Words (runs of letters and digits) and every other visible character, one token each.
struct Words;

impl Tokenize for Words {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>, ChunkError> {
        let mut spans = Vec::new();
        let mut word: Option<usize> = None;
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() {
                word.get_or_insert(i);
                continue;
            }
            if let Some(start) = word.take() {
                spans.push(start..i);
            }
            if !c.is_whitespace() {
                spans.push(i..i + c.len_utf8());
            }
        }
        if let Some(start) = word {
            spans.push(start..text.len());
        }
        Ok(spans)
    }
}

/// As [`Words`], but a word's span starts at the whitespace before it (how byte-level BPE
/// tokenizers report offsets).
struct LeadingSpace;

impl Tokenize for LeadingSpace {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>, ChunkError> {
        let mut spans = Words.token_spans(text)?;
        for i in 1..spans.len() {
            let prev_end = spans[i - 1].end;
            spans[i].start = prev_end.max(spans[i].start - (spans[i].start - prev_end));
        }
        Ok(spans)
    }
}

/// As [`Words`], but any text costs one token more than its words (as if its first word split
/// in two when it stands first): chunks must be re-measured alone.
struct FirstCostsTwo;

impl Tokenize for FirstCostsTwo {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>, ChunkError> {
        let mut spans = Words.token_spans(text)?;
        if let Some(first) = spans.first().cloned() {
            spans.insert(0, first);
        }
        Ok(spans)
    }
}

fn opts(max_tokens: usize, overlap: usize) -> ChunkOptions {
    ChunkOptions {
        max_tokens,
        overlap,
    }
}

fn texts<'a>(text: &'a str, chunks: &[Chunk]) -> Vec<&'a str> {
    chunks.iter().map(|c| c.text(text)).collect()
}

/// `sentences` sentences of `words` words, each ending in a full stop.
fn paragraph(tag: &str, sentences: usize, words: usize) -> String {
    (0..sentences)
        .map(|s| {
            let body: Vec<String> = (0..words).map(|w| format!("{tag}{s}w{w}")).collect();
            format!("{}.", body.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_short_text_is_one_chunk_and_an_empty_one_none() {
    let text = "  Hello world.  ";
    let chunks = chunk(text, &Words, opts(10, 2)).unwrap();
    assert_eq!(
        chunks,
        [Chunk {
            index: 0,
            start: 2,
            end: 14,
            bytes: 2..14,
            tokens: 3
        }]
    );
    assert_eq!(chunks[0].text(text), "Hello world.");
    assert!(chunk(" \n\t ", &Words, opts(10, 2)).unwrap().is_empty());
}

#[test]
fn options_are_checked() {
    for (max, overlap) in [(0, 0), (10, 5), (10, 7), (1, 1)] {
        let err = chunk("a b c", &Words, opts(max, overlap)).unwrap_err();
        assert!(
            matches!(err, ChunkError::Options(_)),
            "{max} {overlap}: {err}"
        );
    }
    assert!(chunk("a b c", &Words, opts(10, 4)).is_ok());
}

#[test]
fn paragraphs_first() {
    // Three paragraphs of 20 tokens: two fit a budget of 50, and the cut is between paragraphs.
    let ps: Vec<String> = ["a", "b", "c"].iter().map(|t| paragraph(t, 4, 4)).collect();
    let text = ps.join("\n\n");
    let chunks = chunk(&text, &Words, opts(50, 0)).unwrap();
    assert_eq!(
        texts(&text, &chunks),
        [format!("{}\n\n{}", ps[0], ps[1]), ps[2].clone()]
    );
    assert_eq!(chunks[0].tokens, 40);
}

#[test]
fn then_sentences_then_words_then_anywhere() {
    // A paragraph longer than the budget is cut after a sentence.
    let text = paragraph("s", 10, 4);
    let chunks = chunk(&text, &Words, opts(12, 0)).unwrap();
    assert_eq!(chunks.len(), 5);
    for c in texts(&text, &chunks) {
        assert!(c.ends_with('.'), "{c:?}");
    }
    // A sentence longer than the budget is cut between words.
    let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let text = words.join(" ");
    let chunks = chunk(&text, &Words, opts(8, 0)).unwrap();
    assert_eq!(texts(&text, &chunks)[0], words[..8].join(" "));
    assert!(chunks.iter().all(|c| c.tokens <= 8));
    // A run without whitespace is cut between tokens.
    let text = "a-b-c-d-e-f-g-h-i-j";
    let chunks = chunk(text, &Words, opts(5, 0)).unwrap();
    assert_eq!(texts(text, &chunks), ["a-b-c", "-d-e-", "f-g-h", "-i-j"]);
    // A line break is a sentence boundary; a CJK full stop needs no space.
    let text = "一二三。四五六。七八\nnine ten";
    let chunks = chunk(text, &Words, opts(3, 0)).unwrap();
    assert_eq!(
        texts(text, &chunks),
        ["一二三。", "四五六。七八", "nine ten"]
    );
}

#[test]
fn neighbours_overlap_from_a_sentence_start() {
    let text = paragraph("s", 10, 4);
    let chunks = chunk(&text, &Words, opts(12, 5)).unwrap();
    let t = texts(&text, &chunks);
    // The first chunk holds sentences 0 and 1; the second starts again at sentence 1.
    assert_eq!(t[0], "s0w0 s0w1 s0w2 s0w3. s1w0 s1w1 s1w2 s1w3.");
    assert!(t[1].starts_with("s1w0 "), "{:?}", t[1]);
    assert!(t[0].ends_with(&t[1][..t[1].find('.').unwrap() + 1]));
    assert!(t.last().unwrap().ends_with("s9w3."));
}

#[test]
fn offsets_are_characters() {
    let text = "Ünïcödé wörds — here.\n\nZweiter Absatz über Straßen.";
    let chunks = chunk(text, &Words, opts(5, 0)).unwrap();
    for c in &chunks {
        let by_chars: String = text.chars().skip(c.start).take(c.end - c.start).collect();
        assert_eq!(by_chars, c.text(text));
    }
    assert_eq!(texts(text, &chunks)[0], "Ünïcödé wörds — here.");
    assert_eq!((chunks[1].start, chunks[1].end), (23, 51));
}

#[test]
fn leading_space_offsets_give_the_same_cuts_and_trimmed_texts() {
    let text = paragraph("s", 6, 4);
    let words = chunk(&text, &Words, opts(12, 5)).unwrap();
    let bpe = chunk(&text, &LeadingSpace, opts(12, 5)).unwrap();
    assert_eq!(texts(&text, &words), texts(&text, &bpe));
}

#[test]
fn chunks_are_measured_alone_and_kept_within_the_budget() {
    let text = (0..40)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let chunks = chunk(&text, &FirstCostsTwo, opts(10, 3)).unwrap();
    for c in &chunks {
        let alone = FirstCostsTwo.token_spans(c.text(&text)).unwrap().len();
        assert_eq!(alone, c.tokens);
        assert!(c.tokens <= 10, "{c:?}");
    }
    // Nine words and the first one's extra token.
    assert_eq!(chunks[0].tokens, 10);
}

/// Every chunk within budget, in order, covering every token, overlapping by at most `overlap`
/// tokens, on random texts of words, sentences, lines and paragraphs.
#[test]
fn invariants_on_random_texts() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    for round in 0..300 {
        let mut text = String::new();
        for _ in 0..rng.random_range(0..400) {
            let word: String = (0..rng.random_range(1..8))
                .map(|_| rng.random_range(b'a'..=b'z') as char)
                .collect();
            text.push_str(&word);
            text.push_str(match rng.random_range(0..20) {
                0 => ".\n\n",
                1 => "\n",
                2 | 3 => ". ",
                4 => "-",
                5 => ", ",
                _ => " ",
            });
        }
        let max: usize = rng.random_range(2..40);
        let overlap = rng.random_range(0..max.div_ceil(2));
        let o = opts(max, overlap);
        let chunks = chunk(&text, &Words, o).unwrap();
        let tokens = Words.token_spans(&text).unwrap();
        let ctx = format!("round {round}, {o:?}");
        if tokens.is_empty() {
            assert!(chunks.is_empty(), "{ctx}");
            continue;
        }
        assert_eq!(chunks[0].bytes.start, tokens[0].start, "{ctx}");
        assert_eq!(
            chunks.last().unwrap().bytes.end,
            tokens.last().unwrap().end,
            "{ctx}"
        );
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.index, i);
            assert!(c.tokens >= 1 && c.tokens <= max, "{ctx}: {c:?}");
            assert_eq!(Words.token_spans(c.text(&text)).unwrap().len(), c.tokens);
            let by_chars: String = text.chars().skip(c.start).take(c.end - c.start).collect();
            assert_eq!(by_chars, c.text(&text), "{ctx}");
            if i == 0 {
                continue;
            }
            let p = &chunks[i - 1];
            assert!(
                c.bytes.start > p.bytes.start && c.bytes.end > p.bytes.end,
                "{ctx}"
            );
            if c.bytes.start >= p.bytes.end {
                // No overlap: only whitespace between them.
                assert!(text[p.bytes.end..c.bytes.start].trim().is_empty(), "{ctx}");
            } else {
                let shared = Words
                    .token_spans(&text[c.bytes.start..p.bytes.end])
                    .unwrap()
                    .len();
                assert!(shared <= overlap, "{ctx}: {shared} shared");
            }
        }
    }
}

#[test]
fn ids_are_stable_and_tell_chunks_apart() {
    let id = chunk_id("docs/a.md", 0, "some text");
    assert_eq!(id, chunk_id("docs/a.md", 0, "some text"));
    assert_eq!(id.get_version_num(), 8);
    for other in [
        chunk_id("docs/b.md", 0, "some text"),
        chunk_id("docs/a.md", 1, "some text"),
        chunk_id("docs/a.md", 0, "other text"),
        chunk_id("docs/a.md0", 0, "some text"),
    ] {
        assert_ne!(id, other);
    }
}

#[test]
fn payloads_carry_place_page_title_and_fields() {
    let text = "Page one text.\n\nPage two text.".to_string();
    let mut doc = Document::new(Path::new("r/report.pdf"), text);
    doc.pages = vec![
        Page {
            number: 1,
            start: 0,
        },
        Page {
            number: 2,
            start: 16,
        },
    ];
    doc.title = Some("Report".into());
    let chunks = chunk(&doc.text, &Words, opts(4, 0)).unwrap();
    assert_eq!(chunks.len(), 2);
    let page = crate::documents::page_at(&doc.pages, chunks[1].bytes.start);
    let p = chunk_payload(
        &doc.base_payload(),
        &json!(doc.key()),
        &chunks[1],
        &doc.text,
        page,
    );
    assert_eq!(
        Value::Object(p),
        json!({"path": "r/report.pdf", "doc_id": "r/report.pdf", "chunk": 1, "start": 16,
               "end": 30, "text": "Page two text.", "page": 2, "title": "Report"})
    );
    let mut row = Document::new(Path::new("t.csv"), "a row".into());
    row.line = Some(4);
    row.fields = json!({"body": "a row", "lang": "en", "chunk": "theirs"})
        .as_object()
        .unwrap()
        .clone();
    let chunks = chunk(&row.text, &Words, opts(4, 0)).unwrap();
    let p = chunk_payload(
        &row.base_payload(),
        &json!("t.csv:4"),
        &chunks[0],
        &row.text,
        None,
    );
    assert_eq!(p["lang"], "en");
    assert_eq!(p["chunk"], 0);
    assert_eq!(p["line"], 4);
    assert_eq!(p["doc_id"], "t.csv:4");
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Chunks sized by the tokenizer file fit the encoder's own limit: the encoder, tokenizing each
/// chunk with its special tokens and refusing to truncate, accepts every one, with exactly the
/// chunk's tokens plus `[CLS]` and `[SEP]`.
fn fits_the_encoder(model_dir: &Path, text: &str, overlap: usize) -> Vec<Chunk> {
    use quiver_encoder::{DType, Device, Encoder, PromptKind, Truncation};

    let enc = Encoder::load(model_dir.to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    let limit = enc.max_length();
    let tokenizer = HfTokenizer::from_file(&model_dir.join("tokenizer.json")).unwrap();
    let chunks = chunk(text, &tokenizer, opts(limit - 2, overlap)).unwrap();
    let pieces: Vec<&str> = chunks.iter().map(|c| c.text(text)).collect();
    let rows = enc
        .tokenize(
            &pieces,
            "retrieval",
            PromptKind::Passage,
            Truncation {
                max_length: limit,
                truncate: false,
            },
        )
        .unwrap();
    for (c, row) in chunks.iter().zip(&rows) {
        assert_eq!(row.len(), c.tokens + 2, "{:?}", c.text(text));
    }
    chunks
}

#[test]
fn the_bert_fixture_tokenizer_agrees_with_the_encoder() {
    let text = std::fs::read_to_string(repo("docs/architecture.md")).unwrap();
    let chunks = fits_the_encoder(&repo("tests/fixtures/bert-tiny"), &text, 4);
    assert!(chunks.len() > 10);
}

#[test]
fn the_real_minilm_tokenizer_agrees_with_the_encoder() {
    let dir = std::env::var_os("QUIVER_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("target/test-assets/all-MiniLM-L6-v2"));
    assert!(
        dir.join("tokenizer.json").is_file(),
        "{} is missing: run scripts/fetch-test-assets.sh first (or set QUIVER_MINILM)",
        dir.display()
    );
    let text = std::fs::read_to_string(repo("docs/api.md")).unwrap();
    let chunks = fits_the_encoder(&dir, &text, 32);
    // Chunks are mostly full: cuts fall in the second half of the budget.
    let mean = chunks.iter().map(|c| c.tokens).sum::<usize>() / chunks.len();
    assert!(mean >= 254 / 2, "mean chunk of {mean} tokens");
    assert!(chunks.len() > 5);
}
