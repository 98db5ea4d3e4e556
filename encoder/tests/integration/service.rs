//! The batching service: batched results equal single results, a full queue says Overloaded.

use std::sync::Arc;

use candle_core::{DType, Device};
use quiver_encoder::{
    EncodeRequest, Encoder, EncoderService, Error, PromptKind, ServiceOptions, Truncation,
};

use crate::common::*;

fn request(texts: &[&str], task: &str, prompt: PromptKind, dims: Option<usize>) -> EncodeRequest {
    EncodeRequest {
        texts: texts.iter().map(|s| s.to_string()).collect(),
        task: task.into(),
        prompt,
        dims,
        truncation: Truncation::default(),
    }
}

#[test]
fn batched_results_equal_single_results() {
    let enc =
        Arc::new(Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap());
    let svc = EncoderService::start(
        enc.clone(),
        ServiceOptions {
            max_batch_tokens: 64,
            max_batch_requests: 3,
            queue_capacity: 64,
        },
    )
    .unwrap();
    let texts = [
        "What is the weather like in Berlin today?",
        "Berlin is the capital of Germany.",
        "short",
        "The quick brown fox jumps over the lazy dog, again and again and again.",
        "def sort(xs): return sorted(xs)",
    ];
    // Many concurrent requests with mixed tasks, prompts and dims; the worker mixes rows of
    // different requests into batches of up to 3 rows / 64 padded tokens.
    let mut pending = Vec::new();
    for (k, task) in ["retrieval", "code", "text-matching", "retrieval"]
        .iter()
        .enumerate()
    {
        let prompt = if k % 2 == 0 {
            PromptKind::Query
        } else {
            PromptKind::Passage
        };
        let dims = [None, Some(16), Some(32), Some(64)][k];
        pending.push((
            task,
            prompt,
            dims,
            svc.submit(request(&texts, task, prompt, dims)).unwrap(),
        ));
    }
    for (task, prompt, dims, p) in pending {
        let got = p.wait().unwrap();
        assert_eq!(got.len(), texts.len());
        for (i, t) in texts.iter().enumerate() {
            let one = enc.encode_texts(&[t], task, prompt, dims).unwrap();
            assert_vec_close(
                &format!("{task} {i} single"),
                &got[i].single,
                &one[0].single,
                1e-5,
            );
            assert_vec_close(
                &format!("{task} {i} multi"),
                &got[i].multi.data,
                &one[0].multi.data,
                1e-5,
            );
        }
    }
    // Validation happens before queueing.
    let err = svc
        .submit(request(&["x"], "nope", PromptKind::Query, None))
        .err()
        .unwrap();
    assert!(matches!(err, Error::UnknownTask { .. }));
    assert!(svc
        .encode(request(&[], "code", PromptKind::Query, None))
        .unwrap()
        .is_empty());
}

#[test]
fn full_queue_is_overloaded() {
    let enc =
        Arc::new(Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap());
    let svc = EncoderService::start(
        enc,
        ServiceOptions {
            max_batch_tokens: 1024,
            max_batch_requests: 8,
            queue_capacity: 2,
        },
    )
    .unwrap();
    // Capacity counts requests whose results have not been collected yet.
    let a = svc
        .submit(request(&["one"], "retrieval", PromptKind::Query, None))
        .unwrap();
    let b = svc
        .submit(request(&["two"], "retrieval", PromptKind::Query, None))
        .unwrap();
    let err = svc
        .submit(request(&["three"], "retrieval", PromptKind::Query, None))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Overloaded), "{err}");
    assert_eq!(a.wait().unwrap().len(), 1);
    let c = svc
        .submit(request(&["three"], "retrieval", PromptKind::Query, None))
        .unwrap();
    drop(b); // a caller that gives up frees its slot too
    assert_eq!(c.wait().unwrap().len(), 1);
    assert!(svc
        .submit(request(&["four"], "retrieval", PromptKind::Query, None))
        .is_ok());
}

#[test]
fn image_calls_take_a_slot_and_are_counted() {
    use std::sync::atomic::Ordering;
    let enc =
        Arc::new(Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap());
    let svc = EncoderService::start(
        enc.clone(),
        ServiceOptions {
            max_batch_tokens: 1024,
            max_batch_requests: 8,
            queue_capacity: 1,
        },
    )
    .unwrap();
    let images = [image_bytes("a"), image_bytes("c")];
    let got = svc.encode_images(&images, "retrieval").unwrap();
    let want = enc.encode_images(&images, "retrieval", None).unwrap();
    assert_eq!(got, want);
    let stats = svc.stats();
    assert_eq!(stats.inputs.load(Ordering::Relaxed), 2);
    let tokens: usize = want.iter().map(|e| e.multi.num_tokens()).sum();
    assert_eq!(stats.tokens.load(Ordering::Relaxed), tokens as u64);
    // The slot is released after the call; while a text request holds the only one, images wait.
    assert_eq!(svc.queue_depth(), 0);
    let held = svc
        .submit(request(&["one"], "retrieval", PromptKind::Query, None))
        .unwrap();
    let err = svc.encode_images(&images, "retrieval").err().unwrap();
    assert!(matches!(err, Error::Overloaded), "{err}");
    assert_eq!(held.wait().unwrap().len(), 1);
    assert!(svc.encode_images(&images[..1], "retrieval").is_ok());
    assert_eq!(stats.rejected.load(Ordering::Relaxed), 1);
}

#[test]
fn concurrent_image_requests_keep_their_order_and_bad_images_free_their_slot() {
    use std::sync::atomic::Ordering;
    let enc =
        Arc::new(Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap());
    let svc = EncoderService::start(
        enc.clone(),
        ServiceOptions {
            max_batch_tokens: 4096,
            max_batch_requests: 8,
            queue_capacity: 4,
        },
    )
    .unwrap();
    let (a, b, c) = (image_bytes("a"), image_bytes("b"), image_bytes("c"));
    // Submitted before either is collected: the worker may merge them into one padded batch.
    let first = svc.submit_images(&[&a, &c], "code").unwrap();
    let second = svc.submit_images(&[&b, &a, &c], "code").unwrap();
    let second = second.wait().unwrap();
    let first = first.wait().unwrap();
    for (got, want) in first.iter().chain(&second).zip([&a, &c, &b, &a, &c]) {
        let alone = enc.encode_images(&[want], "code", None).unwrap().remove(0);
        assert_eq!(got.tokens, alone.tokens);
        assert_vec_close("single", &got.single, &alone.single, 1e-5);
        assert_vec_close("multi", &got.multi.data, &alone.multi.data, 1e-5);
    }
    assert_eq!(svc.stats().inputs.load(Ordering::Relaxed), 5);
    assert!(svc.stats().batches.load(Ordering::Relaxed) <= 2);
    // A corrupt image is the caller's error, named by index, found by the prepare stage after
    // `submit_images` returned; collecting it gives the slot back.
    let pending = svc
        .submit_images(&[a.as_slice(), b"not an image".as_slice()], "code")
        .unwrap();
    assert_eq!(svc.queue_depth(), 1);
    let err = pending.wait().err().unwrap();
    assert!(matches!(err, Error::Image { index: 1, .. }), "{err}");
    assert_eq!(svc.queue_depth(), 0);
}

#[test]
fn texts_and_images_interleaved_through_the_pipeline_keep_order_and_results() {
    use std::sync::atomic::Ordering;
    let enc =
        Arc::new(Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap());
    let svc = EncoderService::start(
        enc.clone(),
        ServiceOptions {
            max_batch_tokens: 4096,
            max_batch_requests: 8,
            queue_capacity: 16,
        },
    )
    .unwrap();
    let (a, b, c) = (image_bytes("a"), image_bytes("b"), image_bytes("c"));
    let texts = ["first text", "a second, longer text than the first", "3"];
    // Submitted from several threads at once, nothing collected until all are in: the prepare
    // stage tokenizes and preprocesses while the worker runs earlier batches.
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|k| {
                let (svc, a, b, c) = (&svc, &a, &b, &c);
                s.spawn(move || {
                    if k % 2 == 0 {
                        let order = [[a, b, c], [c, a, b], [b, c, a]][k / 2];
                        let p = svc.submit_images(&order, "retrieval").unwrap();
                        (k, p.wait().unwrap())
                    } else {
                        let mut t = texts.to_vec();
                        t.rotate_left(k / 2);
                        let p = svc
                            .submit(request(&t, "retrieval", PromptKind::Passage, None))
                            .unwrap();
                        (k, p.wait().unwrap())
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (k, got) in results {
        let want = if k % 2 == 0 {
            let order = [[&a, &b, &c], [&c, &a, &b], [&b, &c, &a]][k / 2];
            enc.encode_images(&order, "retrieval", None).unwrap()
        } else {
            let mut t = texts.to_vec();
            t.rotate_left(k / 2);
            enc.encode_texts(&t, "retrieval", PromptKind::Passage, None)
                .unwrap()
        };
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.tokens, w.tokens, "request {k} item {i}");
            assert_vec_close(&format!("{k}/{i} single"), &g.single, &w.single, 1e-5);
            assert_vec_close(
                &format!("{k}/{i} multi"),
                &g.multi.data,
                &w.multi.data,
                1e-5,
            );
        }
    }
    let stats = svc.stats();
    assert_eq!(stats.inputs.load(Ordering::Relaxed), 18);
    assert!(stats.prepare_micros.load(Ordering::Relaxed) > 0);
    assert_eq!(svc.queue_depth(), 0);
    // A text over the limit with truncation off is found while preparing: the result's error.
    let long = "word ".repeat(200);
    let mut req = request(&[long.as_str()], "retrieval", PromptKind::Query, None);
    req.truncation = Truncation {
        max_length: 16,
        truncate: false,
    };
    let err = svc.submit(req).unwrap().wait().err().unwrap();
    assert!(matches!(err, Error::TooLong { .. }), "{err}");
    assert_eq!(svc.queue_depth(), 0);
}

#[test]
fn an_idle_service_runs_encode_inline_with_the_queued_result() {
    use std::sync::atomic::Ordering;
    let enc =
        Arc::new(Encoder::load(fixture_dir().to_str().unwrap(), &Device::Cpu, DType::F32).unwrap());
    let svc = EncoderService::start(
        enc.clone(),
        ServiceOptions {
            max_batch_tokens: 64,
            max_batch_requests: 4,
            queue_capacity: 8,
        },
    )
    .unwrap();
    let stats = svc.stats();
    let inline = || stats.inline_batches.load(Ordering::Relaxed);
    let texts = [
        "why is the sky blue",
        "short",
        "Berlin is the capital of Germany.",
    ];
    for (task, prompt, dims) in [
        ("retrieval", PromptKind::Query, None),
        ("code", PromptKind::Passage, Some(16)),
    ] {
        let queued = svc
            .submit(request(&texts, task, prompt, dims))
            .unwrap()
            .wait()
            .unwrap();
        let before = inline();
        let here = svc.encode(request(&texts, task, prompt, dims)).unwrap();
        assert_eq!(
            inline(),
            before + 1,
            "an idle service runs the request inline"
        );
        // The same batch either way, so the same numbers, bit for bit.
        assert_eq!(here, queued, "{task}");
        assert_eq!(svc.queue_depth(), 0, "the inline slot is given back");
    }
    assert_eq!(stats.inputs.load(Ordering::Relaxed), 12);

    // Busy (a result not yet collected): encode queues behind it.
    let held = svc
        .submit(request(&["one"], "retrieval", PromptKind::Query, None))
        .unwrap();
    let before = inline();
    let busy = svc
        .encode(request(&texts, "retrieval", PromptKind::Query, None))
        .unwrap();
    assert_eq!(inline(), before, "a busy service queues");
    assert_eq!(held.wait().unwrap().len(), 1);
    let alone = svc
        .encode(request(&texts, "retrieval", PromptKind::Query, None))
        .unwrap();
    assert_eq!(inline(), before + 1);
    for (b, a) in busy.iter().zip(&alone) {
        assert_vec_close("busy vs inline", &b.single, &a.single, 1e-5);
    }

    // Over one batch (5 rows > 4, or > 64 padded tokens): the worker splits it, as before.
    let five = ["a", "b", "c", "d", "e"];
    let long = ["word ".repeat(40)];
    for t in [&five[..], &[long[0].as_str(), "x"][..]] {
        let before = inline();
        let split = svc
            .encode(request(t, "retrieval", PromptKind::Query, None))
            .unwrap();
        assert_eq!(inline(), before, "{} texts over one batch queue", t.len());
        let queued = svc
            .submit(request(t, "retrieval", PromptKind::Query, None))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(split, queued);
    }

    // Errors are the same as through the queue, and leave no slot taken.
    let err = svc
        .encode(request(&["x"], "nope", PromptKind::Query, None))
        .err()
        .unwrap();
    assert!(matches!(err, Error::UnknownTask { .. }), "{err}");
    let mut strict = request(&[long[0].as_str()], "retrieval", PromptKind::Query, None);
    strict.truncation = Truncation {
        max_length: 8,
        truncate: false,
    };
    let here = svc.encode(strict.clone()).err().unwrap();
    let queued = svc.submit(strict).unwrap().wait().err().unwrap();
    assert!(matches!(here, Error::TooLong { .. }), "{here}");
    assert_eq!(here.to_string(), queued.to_string());
    assert_eq!(svc.queue_depth(), 0);
}
