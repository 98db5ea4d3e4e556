//! Late chunking on the tiny checkpoints: each chunk's vector equals the mean of its tokens'
//! states in one forward pass over the whole document (or over its window), computed here from the
//! models' token-level output; windows for documents longer than the context; the service gives
//! what the encoder gives; models that cannot late-chunk refuse.

// A one-chunk list is what several cases mean.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;
use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use quiver_encoder::late_chunking::token_range;
use quiver_encoder::models::bert::{BertConfig, BertModel};
use quiver_encoder::models::qwen2_5_vl::text_position_ids;
use quiver_encoder::{
    EncodeRequest, Encoder, EncoderService, Error, LateChunkOptions, PromptKind, ServiceOptions,
    Truncation,
};

use crate::bert::bert_dir;
use crate::common::*;

const TOL: f32 = 1e-5;

const DOC: &str = "Berlin is the capital of Germany. It is known for its museums and its \
                   nightlife.\n\nThe city has a population of about four million people. \
                   Its river is the Spree.";

fn jina() -> Encoder {
    Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap()
}

/// Character ranges of the sentences of `text` (each ends at its `.`).
fn sentences(text: &str) -> Vec<Range<usize>> {
    let chars: Vec<char> = text.chars().collect();
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, &c) in chars.iter().enumerate() {
        if c == '.' {
            while chars[start].is_whitespace() {
                start += 1;
            }
            spans.push(start..i + 1);
            start = i + 1;
        }
    }
    spans
}

fn mean_normalized(rows: &Tensor, range: Range<usize>) -> Vec<f32> {
    let m = rows
        .narrow(0, range.start, range.len())
        .unwrap()
        .mean(0)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let n = m.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    m.into_iter().map(|x| x / n).collect()
}

fn truncated(v: &[f32], d: usize) -> Vec<f32> {
    let n = v[..d].iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v[..d].iter().map(|x| x / n).collect()
}

/// jina's token-level output for one row: post-norm hidden states `[L, H]` and per-token vectors
/// `[L, P]`, through the model's own forward.
fn jina_tokens(enc: &Encoder, row: &[u32], task: usize) -> (Tensor, Tensor) {
    let l = row.len();
    let ids = Tensor::from_vec(row.to_vec(), (1, l), &Device::Cpu).unwrap();
    let mask_rows = vec![vec![1u32; l]];
    let mask = Tensor::from_vec(mask_rows[0].clone(), (1, l), &Device::Cpu).unwrap();
    let pos = text_position_ids(&mask_rows, &Device::Cpu).unwrap();
    let out = enc
        .jina_model()
        .unwrap()
        .forward(&ids, &mask, &pos, Some(task), false)
        .unwrap();
    (out.hidden.i(0).unwrap(), out.multi.i(0).unwrap())
}

fn opts(task: &str, dims: Option<usize>) -> LateChunkOptions {
    LateChunkOptions {
        dims,
        ..LateChunkOptions::passage(task)
    }
}

#[test]
fn chunk_vectors_are_their_tokens_states_in_the_whole_document() {
    let enc = jina();
    assert!(enc.supports_late_chunking());
    let spans = sentences(DOC);
    assert_eq!(spans.len(), 4);
    let tok = enc
        .tokenize_with_offsets(DOC, "retrieval", PromptKind::Passage)
        .unwrap();
    // The row is the one plain embedding reads; the prompt is its head and pooled by no chunk.
    let plain_row = enc
        .tokenize(
            &[DOC],
            "retrieval",
            PromptKind::Passage,
            Truncation::default(),
        )
        .unwrap();
    assert_eq!(tok.ids, plain_row[0]);
    let prompt = enc.tokenizer().encode_raw("Passage:").unwrap();
    assert!(
        tok.head >= prompt.len(),
        "head {} < prompt {prompt:?}",
        tok.head
    );
    assert_eq!(tok.tail, 0);
    assert_eq!(tok.offsets.len(), tok.ids.len() - tok.head);

    let (hidden, multi) = jina_tokens(&enc, &tok.ids, 0);
    let got = enc
        .embed_spans(DOC, &spans, &opts("retrieval", None))
        .unwrap();
    let got16 = enc
        .embed_spans(DOC, &spans, &opts("retrieval", Some(16)))
        .unwrap();
    assert_eq!(got.len(), spans.len());
    let mut covered = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let r = token_range(&tok.offsets, span).unwrap();
        let rows = r.start + tok.head..r.end + tok.head;
        covered.push(rows.clone());
        let want = mean_normalized(&hidden, rows.clone());
        assert_vec_close(&format!("chunk {i} single"), &got[i].single, &want, TOL);
        assert_vec_close(
            &format!("chunk {i} single.16"),
            &got16[i].single,
            &truncated(&want, 16),
            TOL,
        );
        let want_multi = multi
            .narrow(0, rows.start, rows.len())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(got[i].multi.num_tokens(), rows.len());
        assert_eq!(got[i].tokens, rows.len());
        assert_vec_close(
            &format!("chunk {i} multi"),
            &got[i].multi.data,
            &want_multi,
            TOL,
        );
    }
    // The first chunk starts right after the prompt; the chunks cover the text's tokens.
    assert_eq!(covered[0].start, tok.head);
    assert_eq!(covered.last().unwrap().end, tok.ids.len());

    // A chunk keeps its document's context: not what the chunk alone gives.
    let pieces: Vec<String> = spans
        .iter()
        .map(|s| DOC.chars().skip(s.start).take(s.len()).collect())
        .collect();
    let alone = enc
        .encode_texts(&pieces, "retrieval", PromptKind::Passage, None)
        .unwrap();
    for i in 1..spans.len() {
        let c = cosine(&alone[i].single, &got[i].single);
        assert!(c < 0.9999, "chunk {i} equals its plain vector (cosine {c})");
    }
    // Another task runs its own adapter.
    let code = enc.embed_spans(DOC, &spans, &opts("code", None)).unwrap();
    let (hidden_code, _) = jina_tokens(&enc, &tok.ids, 2);
    let r = token_range(&tok.offsets, &spans[2]).unwrap();
    assert_vec_close(
        "code task",
        &code[2].single,
        &mean_normalized(&hidden_code, r.start + tok.head..r.end + tok.head),
        TOL,
    );
}

#[test]
fn long_documents_run_in_windows_that_hold_whole_chunks() {
    let enc = jina();
    let doc = [DOC, DOC, DOC, DOC, DOC].join("\n\n");
    let spans = sentences(&doc);
    let window = 96;
    let o = LateChunkOptions {
        window: Some(window),
        overlap: Some(6),
        ..opts("retrieval", None)
    };
    let tok = enc
        .tokenize_with_offsets(&doc, "retrieval", PromptKind::Passage)
        .unwrap();
    assert!(tok.ids.len() > 2 * window, "the document needs windows");
    let windows = enc.late_chunk_windows(&doc, &spans, &o).unwrap();
    assert!(windows.len() > 2, "{} windows", windows.len());
    let n_spans: usize = windows.iter().map(|w| w.spans.len()).sum();
    assert_eq!(n_spans, spans.len(), "every chunk in exactly one window");
    let got = enc.embed_spans(&doc, &spans, &o).unwrap();
    assert_eq!(got.len(), spans.len());
    let mut k = 0;
    for (wi, w) in windows.iter().enumerate() {
        assert!(w.ids.len() <= window, "window {wi}: {} tokens", w.ids.len());
        assert_eq!(
            w.ids[..tok.head],
            tok.ids[..tok.head],
            "window {wi} has the prompt"
        );
        // Reference: the window's own forward pass, each chunk the mean over its rows.
        let (hidden, _) = jina_tokens(&enc, &w.ids, 0);
        for span in &w.spans {
            assert!(span.start >= tok.head);
            let want = mean_normalized(&hidden, span.clone());
            assert_vec_close(
                &format!("window {wi} chunk {k}"),
                &got[k].single,
                &want,
                TOL,
            );
            // The window holds the chunk's own tokens.
            let r = token_range(&tok.offsets, &spans[k]).unwrap();
            assert_eq!(
                w.ids[span.clone()],
                tok.ids[r.start + tok.head..r.end + tok.head],
                "chunk {k}"
            );
            k += 1;
        }
    }
    // Later chunks read a window of context, not the whole document: their vectors differ from
    // the one-pass ones (a window of the full context gives those).
    let whole = enc
        .embed_spans(&doc, &spans, &opts("retrieval", None))
        .unwrap();
    let last = spans.len() - 1;
    assert!(cosine(&whole[last].single, &got[last].single) < 0.9999);
}

#[test]
fn the_service_gives_what_the_encoder_gives() {
    let enc = Arc::new(jina());
    let svc = EncoderService::start(
        enc.clone(),
        ServiceOptions {
            max_batch_tokens: 256,
            max_batch_requests: 4,
            queue_capacity: 16,
        },
    )
    .unwrap();
    let doc = [DOC, DOC].join("\n\n");
    let spans = sentences(&doc);
    let o = LateChunkOptions {
        window: Some(96),
        overlap: Some(4),
        ..opts("retrieval", Some(32))
    };
    // Two documents and a plain request in flight together.
    let a = svc
        .submit_spans(doc.clone(), spans.clone(), o.clone())
        .unwrap();
    let plain = svc
        .submit(EncodeRequest {
            texts: vec![DOC.to_string()],
            task: "retrieval".into(),
            prompt: PromptKind::Passage,
            dims: None,
            truncation: Truncation::default(),
        })
        .unwrap();
    let b = svc
        .submit_spans(DOC.to_string(), sentences(DOC), opts("retrieval", None))
        .unwrap();
    let (a, b, plain) = (a.wait().unwrap(), b.wait().unwrap(), plain.wait().unwrap());
    let want_a = enc.embed_spans(&doc, &spans, &o).unwrap();
    let want_b = enc
        .embed_spans(DOC, &sentences(DOC), &opts("retrieval", None))
        .unwrap();
    assert_eq!(a.len(), want_a.len());
    assert_eq!(b.len(), want_b.len());
    for (i, (g, w)) in a
        .iter()
        .zip(&want_a)
        .chain(b.iter().zip(&want_b))
        .enumerate()
    {
        assert_vec_close(&format!("span {i}"), &g.single, &w.single, TOL);
        assert_vec_close(
            &format!("span {i} multi"),
            &g.multi.data,
            &w.multi.data,
            TOL,
        );
    }
    assert_eq!(a[0].single.len(), 32);
    assert_eq!(plain.len(), 1);
    // Refusals come before a slot is taken.
    let err = svc
        .submit_spans(DOC.into(), sentences(DOC), opts("classification", None))
        .map(|_| ())
        .unwrap_err();
    assert!(err.is_user_error(), "{err}");
}

#[test]
fn bad_spans_are_user_errors() {
    let enc = jina();
    let o = opts("retrieval", None);
    for (spans, what) in [
        (vec![], "at least one chunk"),
        (vec![5..5], "empty"),
        (vec![0..10, 2..4, 1..3], "document order"),
        (vec![0..10, 500..510], "no token"),
    ] {
        let err = enc.embed_spans(DOC, &spans, &o).unwrap_err();
        assert!(err.is_user_error(), "{spans:?}: {err}");
        assert!(err.to_string().contains(what), "{spans:?}: {err}");
    }
    let err = enc.embed_spans("  ", &[0..1], &o).unwrap_err();
    assert!(matches!(err, Error::EmptyText { .. }), "{err}");
    // A chunk larger than a window is refused, not cut.
    let err = enc
        .embed_spans(
            DOC,
            &[0..DOC.chars().count()],
            &LateChunkOptions {
                window: Some(12),
                ..o.clone()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("make the chunks smaller"), "{err}");
}

/// BERT's token states for one row, from the checkpoint loaded on its own.
fn bert_tokens(row: &[u32]) -> Tensor {
    let dir = bert_dir();
    let cfg =
        BertConfig::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    };
    let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
        vb
    } else {
        vb.pp("bert")
    };
    let model = BertModel::new(&cfg, vb).unwrap();
    let l = row.len();
    let ids = Tensor::from_vec(row.to_vec(), (1, l), &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, l), DType::U32, &Device::Cpu).unwrap();
    model.forward(&ids, &mask).unwrap().i(0).unwrap()
}

#[test]
fn bert_pools_each_chunk_over_its_window() {
    let enc = Encoder::load(bert_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    assert!(enc.supports_late_chunking());
    // max_seq_length is 24: the document needs windows.
    let doc = "A man is eating food. A man is eating a piece of bread. The girl is carrying a \
               baby. Quiver is a vector search engine written in Rust.";
    let spans = sentences(doc);
    let tok = enc
        .tokenize_with_offsets(doc, "retrieval", PromptKind::Passage)
        .unwrap();
    assert_eq!((tok.head, tok.tail), (1, 1), "[CLS] and [SEP]");
    assert!(tok.ids.len() > enc.max_length());
    let o = LateChunkOptions::passage("retrieval");
    let windows = enc.late_chunk_windows(doc, &spans, &o).unwrap();
    assert!(windows.len() > 1);
    let got = enc.embed_spans(doc, &spans, &o).unwrap();
    assert_eq!(got.len(), spans.len());
    let mut k = 0;
    for w in &windows {
        assert!(w.ids.len() <= enc.max_length());
        assert_eq!(
            (w.ids[0], *w.ids.last().unwrap()),
            (tok.ids[0], tok.ids[tok.ids.len() - 1])
        );
        let hidden = bert_tokens(&w.ids);
        for span in &w.spans {
            let mut want = mean_normalized(&hidden, span.clone());
            if !enc.normalizes() {
                // Unnormalised pipelines keep the mean as it is.
                let m = hidden
                    .narrow(0, span.start, span.len())
                    .unwrap()
                    .mean(0)
                    .unwrap();
                want = m.to_vec1::<f32>().unwrap();
            }
            assert_vec_close(&format!("bert chunk {k}"), &got[k].single, &want, TOL);
            assert!(got[k].multi.data.is_empty());
            k += 1;
        }
    }
    assert_eq!(k, spans.len());
}

#[test]
fn cls_pooled_models_refuse_late_chunking() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&bert_dir(), tmp.path());
    std::fs::write(
        tmp.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 32, "pooling_mode_cls_token": true,
            "pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false}"#,
    )
    .unwrap();
    let enc = Encoder::load(tmp.path().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap();
    assert!(!enc.supports_late_chunking());
    let err = enc
        .embed_spans(
            "A man is eating food.",
            &[0..5],
            &LateChunkOptions::passage("retrieval"),
        )
        .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert!(
        err.to_string().contains("late chunking is not supported"),
        "{err}"
    );
    let svc = EncoderService::start(Arc::new(enc), ServiceOptions::default()).unwrap();
    let err = svc
        .submit_spans(
            "food".into(),
            vec![0..4],
            LateChunkOptions::passage("retrieval"),
        )
        .map(|_| ())
        .unwrap_err();
    assert!(
        err.to_string().contains("late chunking is not supported"),
        "{err}"
    );
}
