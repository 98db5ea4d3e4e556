//! [`Tokenize`] over a Hugging Face `tokenizer.json`, the file the encoder loads: the same
//! tokens, with their byte offsets.

use std::ops::Range;
use std::path::Path;

use super::{ChunkError, Tokenize};

/// A `tokenizer.json` with the file's own padding and truncation off (as the encoder has it).
pub struct HfTokenizer(tokenizers::Tokenizer);

impl HfTokenizer {
    pub fn from_file(path: &Path) -> Result<Self, ChunkError> {
        let mut inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| ChunkError::Tokenizer(format!("{}: {e}", path.display())))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ChunkError::Tokenizer(e.to_string()))?;
        Ok(HfTokenizer(inner))
    }
}

impl Tokenize for HfTokenizer {
    fn token_spans(&self, text: &str) -> Result<Vec<Range<usize>>, ChunkError> {
        let encoding = self
            .0
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
}
