//! The image path of [`Encoder`]: preprocess, run the vision tower over the batch, place the
//! features at the `<|image_pad|>` slots of jina's image prompt, decode with M-RoPE positions and
//! pool the vision span (spec §2.3, §3, §4.1).

use candle_core::Tensor;

use super::{Embedding, Encoder, RunSpec};
use crate::error::{Error, Result};
use crate::image::{preprocess, Patches};
use crate::models::jina_v4::JinaOutput;
use crate::models::qwen2_5_vl::multimodal_position_ids;
use crate::prompt::ImagePrompt;

impl Encoder {
    /// Embeds encoded images (PNG, JPEG, WebP, GIF) with jina's image prompt. Images of
    /// different sizes may share a call; errors name the failing input's index.
    pub fn encode_images(
        &self,
        images: &[impl AsRef<[u8]>],
        task: &str,
        dims: Option<usize>,
    ) -> Result<Vec<Embedding>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let spec = self.run_spec(task, dims)?;
        self.image_prompt()?;
        let patches = images
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                preprocess(bytes.as_ref(), &self.preprocessor, &self.image_limits)
                    .map_err(|source| Error::Image { index, source })
            })
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Patches> = patches.iter().collect();
        self.encode_patches(&refs, spec)
    }

    /// Embeds already preprocessed images, batching them by padded prompt length.
    pub fn encode_patches(&self, patches: &[&Patches], spec: RunSpec) -> Result<Vec<Embedding>> {
        let prompt = self.image_prompt()?;
        let merge = self.preprocessor.merge_size;
        let len = |p: &Patches| prompt.before.len() + p.num_tokens(merge) + prompt.after.len();
        let mut order: Vec<usize> = (0..patches.len()).collect();
        order.sort_by_key(|&i| len(patches[i]));
        let mut out: Vec<Option<Embedding>> = vec![None; patches.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && len(patches[order[end]]) * (end + 1 - start) <= self.batch_tokens
            {
                end += 1;
            }
            let batch: Vec<&Patches> = order[start..end].iter().map(|&i| patches[i]).collect();
            let (_, embeddings) = self.embed_patches(&batch, spec, false)?;
            for (k, e) in embeddings.into_iter().enumerate() {
                out[order[start + k]] = Some(e);
            }
            start = end;
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every image embedded: this is a bug"))
            .collect())
    }

    /// One forward pass over a right-padded batch of image prompts; returns the raw model
    /// output too (for parity tests).
    pub fn embed_patches(
        &self,
        patches: &[&Patches],
        spec: RunSpec,
        keep_layer_outputs: bool,
    ) -> Result<(JinaOutput, Vec<Embedding>)> {
        let prompt = self.image_prompt()?;
        if patches.is_empty() {
            return Err(Error::InvalidInput("no images to embed".into()));
        }
        let model = self.jina()?;
        let vision = model
            .vision()
            .expect("image_prompt implies a tower: this is a bug");
        let image_id = model
            .config()
            .text
            .special
            .image_token_id
            .expect("image_prompt implies an image token id: this is a bug");
        let merge = self.preprocessor.merge_size;
        let patch_dim = vision.config().patch_dim();
        if let Some(p) = patches.iter().find(|p| p.patch_dim != patch_dim) {
            return Err(Error::InvalidInput(format!(
                "patches of {} values, the vision tower takes {patch_dim}",
                p.patch_dim
            )));
        }
        let mut pixels = Vec::with_capacity(patches.iter().map(|p| p.data.len()).sum());
        for p in patches {
            pixels.extend_from_slice(&p.data);
        }
        let n_patches = pixels.len() / patch_dim;
        let pixels = Tensor::from_vec(pixels, (n_patches, patch_dim), &self.device)?;
        let grids: Vec<[usize; 3]> = patches.iter().map(|p| p.grid_thw).collect();
        let features = {
            let _span = tracing::debug_span!("vision_tower", images = patches.len()).entered();
            vision.forward(&pixels, &grids)?
        };

        let rows: Vec<Vec<u32>> = patches
            .iter()
            .map(|p| prompt.ids(image_id, p.num_tokens(merge)))
            .collect();
        let b = rows.len();
        let l = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * l);
        let mut mask = Vec::with_capacity(b * l);
        let mut pool = Vec::with_capacity(b * l);
        // The single vector pools <|vision_start|> ..= <|vision_end|>.
        let span_start = prompt.before.len() - 1;
        for (r, p) in rows.iter().zip(patches) {
            let span_end = prompt.before.len() + p.num_tokens(merge);
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(self.pad_id, l - r.len()));
            mask.extend((0..l).map(|i| u32::from(i < r.len())));
            pool.extend((0..l).map(|i| u32::from((span_start..=span_end).contains(&i))));
        }
        let row_refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        let row_grids: Vec<Vec<[usize; 3]>> = grids.iter().map(|g| vec![*g]).collect();
        let positions =
            multimodal_position_ids(&row_refs, &row_grids, image_id, merge, l, &self.device)?;
        let input_ids = Tensor::from_vec(ids, (b, l), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, l), &self.device)?;
        let pool = Tensor::from_vec(pool, (b, l), &self.device)?;
        let task = model.has_adapters().then_some(spec.task);
        let out = model.forward_with_images(
            &input_ids,
            &mask,
            &pool,
            &positions,
            &features,
            task,
            keep_layer_outputs,
        )?;
        let embeddings = self.embeddings(&out, &rows, spec)?;
        Ok((out, embeddings))
    }

    fn image_prompt(&self) -> Result<&ImagePrompt> {
        self.image_prompt.as_ref().ok_or_else(|| {
            Error::Unsupported(
                "this checkpoint cannot embed images (no vision tower or image token ids)".into(),
            )
        })
    }
}
