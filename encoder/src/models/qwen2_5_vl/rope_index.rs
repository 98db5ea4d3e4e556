//! 3-D M-RoPE position ids for prompts that hold images (`get_rope_index`, spec §3.3).
//!
//! Text tokens advance one running position in all three components. The `h·w/merge²` pad
//! tokens of an image share the temporal position `s` (the running position when the image
//! starts) and take `s + row` and `s + column` of the merged grid; text after the image resumes
//! at `s + max(rows, columns)`. Reference: transformers 5.17 `Qwen2_5_VLModel.get_rope_index`
//! <https://github.com/huggingface/transformers/blob/v5.17.0/src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py#L955-L1065>.

use candle_core::{Device, Result, Tensor};

/// Position ids `[3, B, L]` (i64) for right-padded rows. `rows[b]` are the real tokens of row
/// `b` and `grids[b]` the `[t, h, w]` patch grids of its images, in order; padded slots get 1
/// (what jina's 4.52-era code writes; they are masked either way).
pub fn multimodal_position_ids(
    rows: &[&[u32]],
    grids: &[Vec<[usize; 3]>],
    image_token_id: u32,
    merge_size: usize,
    padded_len: usize,
    device: &Device,
) -> Result<Tensor> {
    let b = rows.len();
    let mut out = vec![1i64; 3 * b * padded_len];
    for (bi, (row, row_grids)) in rows.iter().zip(grids).enumerate() {
        if row.len() > padded_len {
            candle_core::bail!("row {bi} is longer than the padded length {padded_len}");
        }
        let mut set = |i: usize, t: i64, h: i64, w: i64| {
            out[bi * padded_len + i] = t;
            out[(b + bi) * padded_len + i] = h;
            out[(2 * b + bi) * padded_len + i] = w;
        };
        let mut cur = 0i64;
        let mut images = row_grids.iter();
        let mut i = 0;
        while i < row.len() {
            if row[i] != image_token_id {
                set(i, cur, cur, cur);
                cur += 1;
                i += 1;
                continue;
            }
            let Some(&[t, gh, gw]) = images.next() else {
                candle_core::bail!("row {bi}: more image spans than images");
            };
            if t != 1 {
                candle_core::bail!("row {bi}: video grids (t = {t}) are not supported");
            }
            let (lh, lw) = (gh / merge_size, gw / merge_size);
            let n = lh * lw;
            if i + n > row.len() || row[i..i + n].iter().any(|&id| id != image_token_id) {
                candle_core::bail!("row {bi}: image span at {i} does not hold {n} pad tokens");
            }
            for r in 0..lh {
                for c in 0..lw {
                    set(i + r * lw + c, cur, cur + r as i64, cur + c as i64);
                }
            }
            cur += lh.max(lw) as i64;
            i += n;
        }
        if images.next().is_some() {
            candle_core::bail!("row {bi}: fewer image spans than images");
        }
    }
    Tensor::from_vec(out, (3, b, padded_len), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_of_the_spec() {
        // 448×448: grid 32×32, 256 pad tokens; 4 tokens before, 7 after.
        let mut ids = vec![1, 2, 3, 4];
        ids.extend(std::iter::repeat_n(9, 256));
        ids.extend([5, 6, 7, 8, 10, 11, 12]);
        let pos = multimodal_position_ids(&[&ids], &[vec![[1, 32, 32]]], 9, 2, 267, &Device::Cpu)
            .unwrap()
            .to_vec3::<i64>()
            .unwrap();
        let at = |i: usize| (pos[0][0][i], pos[1][0][i], pos[2][0][i]);
        assert_eq!(at(3), (3, 3, 3));
        assert_eq!(at(4), (4, 4, 4));
        assert_eq!(at(4 + 17), (4, 5, 5));
        assert_eq!(at(259), (4, 19, 19));
        assert_eq!(at(260), (20, 20, 20));
        assert_eq!(at(266), (26, 26, 26));
    }

    #[test]
    fn span_count_mismatch_is_an_error() {
        let ids = [1, 9, 9, 9, 9, 2];
        let r = multimodal_position_ids(&[&ids], &[vec![[1, 4, 6]]], 9, 2, 6, &Device::Cpu);
        assert!(r.is_err());
        let r = multimodal_position_ids(&[&ids], &[vec![]], 9, 2, 6, &Device::Cpu);
        assert!(r.is_err());
    }
}
