//! Prompt kinds and the text tokenizer.
//!
//! jina-embeddings-v4 embeds `"Query: {text}"` or `"Passage: {text}"` (spec §2.1); the
//! `text-matching` task is symmetric and uses `"Query: "` for both. The prefixed string is
//! tokenized once (the space after the colon belongs to the next word), with no BOS/EOS, and
//! truncated on the right so the prefix counts toward the limit.

use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use tokenizers::{PostProcessor, Tokenizer, TruncationDirection};

use crate::error::{Error, Result};

/// The default and largest text length jina-embeddings-v4 accepts, in tokens.
pub const DEFAULT_MAX_LENGTH: usize = 32768;

/// Which side of a retrieval pair a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptKind {
    Query,
    Passage,
}

impl PromptKind {
    /// The prefix for `task`: text-matching always reads "Query: ".
    pub fn prefix(self, task: &str) -> &'static str {
        match (self, task) {
            (_, "text-matching") | (PromptKind::Query, _) => "Query: ",
            (PromptKind::Passage, _) => "Passage: ",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PromptKind::Query => "query",
            PromptKind::Passage => "passage",
        }
    }
}

impl FromStr for PromptKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "query" => Ok(PromptKind::Query),
            "passage" | "document" => Ok(PromptKind::Passage),
            _ => Err(Error::UnknownPrompt { got: s.to_string() }),
        }
    }
}

/// Truncation policy for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Token limit including the prompt prefix.
    pub max_length: usize,
    /// Cut longer inputs (true) or reject them with [`Error::TooLong`].
    pub truncate: bool,
}

impl Default for Truncation {
    fn default() -> Self {
        Truncation {
            max_length: DEFAULT_MAX_LENGTH,
            truncate: true,
        }
    }
}

/// Ids, each token's character offsets, and whether each is a special token the post-processor
/// added ([`TextTokenizer::encode_with_offsets`]).
pub type EncodedWithOffsets = (Vec<u32>, Vec<Range<usize>>, Vec<bool>);

/// `tokenizer.json` with the file's own padding and truncation switched off: batches are
/// padded by the encoder, and a fixed padding baked into a tokenizer file changes every vector.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut inner = Tokenizer::from_file(path)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TextTokenizer { inner })
    }

    /// The `tokenizer.json` itself (padding and truncation off), for callers that need what
    /// ids alone do not give, such as each token's byte offsets to cut text between tokens.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Ids of `text` as given, no special tokens added.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids of `text` with each token's character offsets and whether it is a special token the
    /// file's post-processor added (with `special`: BERT's `[CLS]`, `[SEP]`); no truncation.
    pub fn encode_with_offsets(&self, text: &str, special: bool) -> Result<EncodedWithOffsets> {
        let enc = self
            .inner
            .encode_char_offsets(text, special)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok((
            enc.get_ids().to_vec(),
            enc.get_offsets().iter().map(|&(a, b)| a..b).collect(),
            enc.get_special_tokens_mask()
                .iter()
                .map(|&m| m == 1)
                .collect(),
        ))
    }

    /// Tokenizes one input with the file's special tokens (`[CLS] … [SEP]` for BERT), cutting
    /// the text on the right so the whole row, special tokens included, fits `max_length`: what
    /// a transformers tokenizer does with `truncation=True, max_length=…`. `index` names the
    /// input in errors.
    pub fn encode_with_special(
        &self,
        text: &str,
        max_length: usize,
        truncate: bool,
        index: usize,
    ) -> Result<Vec<u32>> {
        if text.trim().is_empty() {
            return Err(Error::EmptyText { index });
        }
        let mut enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let added = self
            .inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_length <= added {
            return Err(Error::InvalidInput(format!(
                "max_length {max_length} leaves no room for text next to {added} special tokens"
            )));
        }
        let total = enc.len() + added;
        if total > max_length {
            if !truncate {
                return Err(Error::TooLong {
                    index,
                    tokens: total,
                    max_length,
                });
            }
            enc.truncate(max_length - added, 0, TruncationDirection::Right);
        }
        let enc = self
            .inner
            .post_process(enc, None, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Prefixes, tokenizes and truncates one input; `index` names it in errors.
    pub fn encode_prompted(
        &self,
        text: &str,
        task: &str,
        prompt: PromptKind,
        trunc: Truncation,
        index: usize,
    ) -> Result<Vec<u32>> {
        if text.trim().is_empty() {
            return Err(Error::EmptyText { index });
        }
        let mut ids = self.encode_raw(&format!("{}{text}", prompt.prefix(task)))?;
        if ids.len() > trunc.max_length {
            if !trunc.truncate {
                return Err(Error::TooLong {
                    index,
                    tokens: ids.len(),
                    max_length: trunc.max_length,
                });
            }
            ids.truncate(trunc.max_length);
        }
        Ok(ids)
    }
}

/// jina's single-image prompt around the vision span (spec §2.3): `<|im_start|>user\n`, then
/// `<|vision_start|>`, the image pads, `<|vision_end|>`, then this suffix.
pub const IMAGE_PROMPT_BEFORE: &str = "<|im_start|>user\n";
pub const IMAGE_PROMPT_AFTER: &str = "Describe the image.<|im_end|>\n";

/// The ids before and after an image's pad tokens: `[.. <|vision_start|>]` and
/// `[<|vision_end|> ..]`. The vision markers come from the config, so a tokenizer that lacks
/// them (the tiny test one) gives the same layout; with jina's tokenizer the result equals
/// tokenizing the whole template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePrompt {
    pub before: Vec<u32>,
    pub after: Vec<u32>,
}

impl ImagePrompt {
    pub fn new(tok: &TextTokenizer, vision_start: u32, vision_end: u32) -> Result<Self> {
        let mut before = tok.encode_raw(IMAGE_PROMPT_BEFORE)?;
        before.push(vision_start);
        let mut after = vec![vision_end];
        after.extend(tok.encode_raw(IMAGE_PROMPT_AFTER)?);
        Ok(ImagePrompt { before, after })
    }

    /// The full row for an image of `n` tokens.
    pub fn ids(&self, image_token: u32, n: usize) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.before.len() + n + self.after.len());
        ids.extend_from_slice(&self.before);
        ids.extend(std::iter::repeat_n(image_token, n));
        ids.extend_from_slice(&self.after);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(PromptKind::Passage.prefix("retrieval"), "Passage: ");
        assert_eq!(PromptKind::Passage.prefix("code"), "Passage: ");
        assert_eq!(PromptKind::Passage.prefix("text-matching"), "Query: ");
        assert_eq!(PromptKind::Query.prefix("retrieval"), "Query: ");
        assert!(matches!(
            "foo".parse::<PromptKind>(),
            Err(Error::UnknownPrompt { .. })
        ));
    }
}
