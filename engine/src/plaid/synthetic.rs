//! Synthetic ColBERT-like corpora for tests and benchmarks (the `test-corpus` feature; not part of the
//! production API).
//!
//! The corpus mimics what makes late interaction hard: documents belong to topics, most of their tokens
//! are noisy copies of their topic's "terms", and a share are shared "stop-word" terms that every topic
//! uses (so centroid cells are crowded). A query is a noisy subset of one document's tokens.

pub use super::rng::SplitMix64;

/// Shape of a synthetic corpus.
#[derive(Clone, Debug)]
pub struct CorpusParams {
    /// Documents.
    pub docs: usize,
    /// Mean tokens per document (each document gets 50–150 % of it, at least 1).
    pub tokens_per_doc: usize,
    /// Dimension of a token.
    pub dim: usize,
    /// Topics; each document belongs to one.
    pub topics: usize,
    /// Distinct terms per topic.
    pub terms_per_topic: usize,
    /// Terms shared by all topics (stop words, punctuation).
    pub shared_terms: usize,
    /// Fraction of a document's tokens drawn from the shared terms.
    pub shared_fraction: f32,
    /// Norm of the Gaussian noise added to a term to make a document token (before normalising).
    pub token_noise: f32,
    /// Queries.
    pub queries: usize,
    /// Tokens per query.
    pub query_tokens: usize,
    /// Norm of the noise added to a document token to make a query token.
    pub query_noise: f32,
    /// Seed of everything.
    pub seed: u64,
}

impl Default for CorpusParams {
    fn default() -> Self {
        CorpusParams {
            docs: 2_000,
            tokens_per_doc: 30,
            dim: 64,
            topics: 50,
            terms_per_topic: 40,
            shared_terms: 30,
            shared_fraction: 0.25,
            token_noise: 0.5,
            queries: 50,
            query_tokens: 12,
            query_noise: 0.3,
            seed: 42,
        }
    }
}

/// Documents (as `offsets` + `data`, the layout [`super::TokenMatrices`] borrows) and queries, every
/// token L2-normalised.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Dimension of a token.
    pub dim: usize,
    /// Token offsets, `docs + 1` entries: document `i` is rows `offsets[i]..offsets[i + 1]`.
    pub offsets: Vec<u64>,
    /// Token rows.
    pub data: Vec<f32>,
    /// Query matrices (`query_tokens × dim` each).
    pub queries: Vec<Vec<f32>>,
}

impl Corpus {
    /// Generates a corpus; the same params always give the same corpus.
    pub fn generate(p: &CorpusParams) -> Corpus {
        let mut rng = SplitMix64::new(p.seed);
        let dim = p.dim;
        let random_unit = |rng: &mut SplitMix64| {
            let mut v: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
            crate::kernels::normalize(&mut v);
            v
        };
        // Terms of a topic lean towards the topic's centre, so topics are clusters of clusters.
        let mut topic_terms = Vec::with_capacity(p.topics);
        for _ in 0..p.topics {
            let centre = random_unit(&mut rng);
            let terms: Vec<Vec<f32>> = (0..p.terms_per_topic)
                .map(|_| {
                    let r = random_unit(&mut rng);
                    let mut t: Vec<f32> = centre.iter().zip(&r).map(|(c, r)| 0.6 * c + r).collect();
                    crate::kernels::normalize(&mut t);
                    t
                })
                .collect();
            topic_terms.push(terms);
        }
        let shared: Vec<Vec<f32>> = (0..p.shared_terms).map(|_| random_unit(&mut rng)).collect();

        let noisy = |rng: &mut SplitMix64, base: &[f32], noise: f32, out: &mut Vec<f32>| {
            let scale = noise / (dim as f32).sqrt();
            let start = out.len();
            out.extend(base.iter().map(|&b| b + scale * rng.gaussian()));
            crate::kernels::normalize(&mut out[start..]);
        };

        let mut offsets = Vec::with_capacity(p.docs + 1);
        offsets.push(0u64);
        let mut data = Vec::with_capacity(p.docs * p.tokens_per_doc * dim);
        for _ in 0..p.docs {
            let topic = &topic_terms[rng.below(p.topics)];
            let len = (p.tokens_per_doc / 2 + rng.below(p.tokens_per_doc + 1)).max(1);
            for _ in 0..len {
                let term = if !shared.is_empty() && rng.unit() < p.shared_fraction {
                    &shared[rng.below(shared.len())]
                } else {
                    &topic[rng.below(topic.len())]
                };
                noisy(&mut rng, term, p.token_noise, &mut data);
            }
            offsets.push((data.len() / dim) as u64);
        }

        let mut queries = Vec::with_capacity(p.queries);
        for _ in 0..p.queries {
            let doc = rng.below(p.docs);
            let (start, end) = (offsets[doc] as usize, offsets[doc + 1] as usize);
            let mut q = Vec::with_capacity(p.query_tokens * dim);
            for _ in 0..p.query_tokens {
                let t = start + rng.below(end - start);
                noisy(
                    &mut rng,
                    &data[t * dim..(t + 1) * dim],
                    p.query_noise,
                    &mut q,
                );
            }
            queries.push(q);
        }
        Corpus {
            dim,
            offsets,
            data,
            queries,
        }
    }
}
