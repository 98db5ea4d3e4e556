//! What a model returns for one input: a dense vector, optional per-token vectors and the token
//! count, with the post-processing every caller shares (Matryoshka truncation, L2 normalisation).

/// Per-token vectors of one input, row-major `tokens × dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiVector {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl MultiVector {
    /// No per-token vectors (models without multi-vector output).
    pub fn empty() -> Self {
        MultiVector {
            dim: 0,
            data: Vec::new(),
        }
    }

    pub fn num_tokens(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim.max(1))
    }
}

/// The embeddings of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// The dense vector: L2-normalised (for BERT when its pipeline has a `Normalize` module),
    /// truncated to the requested Matryoshka dimension.
    pub single: Vec<f32>,
    /// L2-normalised per-token vectors, one per non-pad token (prompt prefix included); empty
    /// (`dim` 0) for models without multi-vector output (see [`crate::ModelInfo::multi_vector_dim`]).
    pub multi: MultiVector,
    /// Tokens the model read for this input, prompt and special tokens included.
    pub tokens: usize,
}

impl Embedding {
    /// The dense vector cut to its first `dims` values and renormalised (Matryoshka); the whole
    /// vector, renormalised, when `dims` is not shorter.
    pub fn truncated(&self, dims: usize) -> Vec<f32> {
        let mut head = self.single[..dims.min(self.single.len())].to_vec();
        l2_normalize(&mut head);
        head
    }

    /// [`Embedding::truncated`] in place; a no-op when `dims` is not shorter than the vector.
    pub fn truncate(&mut self, dims: usize) {
        if dims < self.single.len() {
            self.single.truncate(dims);
            l2_normalize(&mut self.single);
        }
    }

    /// Scales the dense vector to unit length (a zero vector stays zero).
    pub fn normalize(&mut self) {
        l2_normalize(&mut self.single);
    }
}

/// Divides by the L2 norm, floored at 1e-12 as `torch.nn.functional.normalize` does.
fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(v: &[f32]) -> Embedding {
        Embedding {
            single: v.to_vec(),
            multi: MultiVector::empty(),
            tokens: 1,
        }
    }

    #[test]
    fn truncation_renormalises() {
        let e = dense(&[3.0, 4.0, 12.0]);
        assert_eq!(e.truncated(2), vec![0.6, 0.8]);
        let mut e = e;
        e.truncate(2);
        assert_eq!(e.single, vec![0.6, 0.8]);
        // Not shorter: unchanged in place, renormalised as a copy.
        let mut e = dense(&[3.0, 4.0]);
        e.truncate(5);
        assert_eq!(e.single, vec![3.0, 4.0]);
        assert_eq!(e.truncated(5), vec![0.6, 0.8]);
    }

    #[test]
    fn normalisation_leaves_zero_vectors_alone() {
        let mut e = dense(&[0.0, 0.0]);
        e.normalize();
        assert_eq!(e.single, vec![0.0, 0.0]);
        let mut e = dense(&[0.0, -2.0]);
        e.normalize();
        assert_eq!(e.single, vec![0.0, -1.0]);
    }
}
