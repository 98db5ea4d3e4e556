//! [`Tokenize`] over a Hugging Face tokenizer, the one the encoder loads: the same tokens, with
//! their byte offsets.

use std::ops::Range;

use super::{ChunkError, Tokenize};

/// A loaded model's tokenizer (the encoder's, padding and truncation off).
pub struct ModelTokenizer<'a>(pub &'a tokenizers::Tokenizer);

impl Tokenize for ModelTokenizer<'_> {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>, ChunkError> {
        spans(self.0, text)
    }
}

fn spans(tokenizer: &tokenizers::Tokenizer, text: &str) -> Result<Vec<Range<usize>>, ChunkError> {
    let encoding = tokenizer
        .encode(text, false)
        .map_err(|e| ChunkError::Tokenizer(e.to_string()))?;
    Ok(encoding
        .get_offsets()
        .iter()
        .zip(encoding.get_special_tokens_mask())
        .filter(|(_, &special)| special == 0)
        .map(|(&(start, end), _)| start..end)
        .collect())
}

/// A `tokenizer.json` read on its own, with the file's own padding and truncation off (as the
/// encoder has it): for tests that chunk without loading a model.
#[cfg(test)]
pub struct HfTokenizer(tokenizers::Tokenizer);

#[cfg(test)]
impl HfTokenizer {
    pub fn from_file(path: &std::path::Path) -> Result<Self, ChunkError> {
        let mut inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| ChunkError::Tokenizer(format!("{}: {e}", path.display())))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ChunkError::Tokenizer(e.to_string()))?;
        Ok(HfTokenizer(inner))
    }
}

#[cfg(test)]
impl Tokenize for HfTokenizer {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>, ChunkError> {
        spans(&self.0, text)
    }
}
