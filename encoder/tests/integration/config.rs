//! Both config styles parse to the same model.

use candle_core::DType;
use quiver_encoder::loading::Checkpoint;
use quiver_encoder::models::jina_v4::JinaConfig;

use crate::common::*;

#[test]
fn both_config_styles_parse_alike() {
    let legacy = std::fs::read_to_string(fixture_dir().join("config.json")).unwrap();
    let v5 = std::fs::read_to_string(fixture_dir().join("config.v5.json")).unwrap();
    let a = JinaConfig::from_json(&legacy).unwrap();
    let mut b = JinaConfig::from_json(&v5).unwrap();
    // transformers 5.x no longer writes vision_token_id (<|vision_pad|>, unused for images).
    assert_eq!(a.text.special.vision_token_id, Some(504));
    assert_eq!(b.text.special.vision_token_id, None);
    b.text.special.vision_token_id = a.text.special.vision_token_id;
    assert_eq!(a, b);
    let t = &a.text;
    assert_eq!(
        (
            t.hidden_size,
            t.num_hidden_layers,
            t.num_attention_heads,
            t.num_key_value_heads
        ),
        (64, 2, 4, 2)
    );
    assert_eq!(t.head_dim, 16);
    assert_eq!(t.mrope_section, [2, 3, 3]);
    assert_eq!(t.rope_theta, 1e6);
    assert_eq!(t.special.image_token_id, Some(500));
    assert_eq!(t.special.vision_start_token_id, Some(502));
    assert_eq!(t.special.vision_end_token_id, Some(503));
    assert_eq!(t.special.pad_token_id, Some(2));
    assert_eq!(a.matryoshka_dims, vec![16, 32, 64]);
    assert_eq!(a.task_names, vec!["retrieval", "text-matching", "code"]);
    assert_eq!(a.multi_vector_projector_dim, 16);
}

#[test]
fn v5_config_runs_the_same_model() {
    let tmp = fixture_copy();
    std::fs::copy(
        tmp.path().join("config.v5.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let ck = Checkpoint::open(tmp.path()).unwrap();
    assert_eq!(ck.adapter_config.as_ref().unwrap().scaling(), 2.0);
    let model = ck
        .load_model(&candle_core::Device::Cpu, DType::F32)
        .unwrap();
    let out = run(&model, "len7", Some(2), false);
    assert_close("single", &out.single, golden("code/len7/single"), 1e-5);
}

#[test]
fn real_jina_config_values() {
    // The published config.json's shape (flat + text_config, 4.5x), values of spec §1.2.
    let json = r#"{
      "architectures": ["JinaEmbeddingsV4Model"], "model_type": "qwen2_5_vl",
      "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
      "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 151936,
      "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "max_position_embeddings": 128000,
      "sliding_window": 32768, "use_sliding_window": false, "max_window_layers": 70,
      "tie_word_embeddings": true, "hidden_act": "silu",
      "bos_token_id": 151643, "eos_token_id": 151645,
      "vision_start_token_id": 151652, "vision_end_token_id": 151653, "vision_token_id": 151654,
      "image_token_id": 151655, "video_token_id": 151656,
      "rope_scaling": {"type": "mrope", "rope_type": "default", "mrope_section": [16, 24, 24]},
      "text_config": {"hidden_size": 2048, "num_hidden_layers": 36, "vocab_size": 151936,
        "rope_scaling": {"type": "default", "rope_type": "default", "mrope_section": [16, 24, 24]}},
      "vision_config": {"depth": 32, "hidden_size": 1280, "out_hidden_size": 2048, "in_chans": 3},
      "multi_vector_projector_dim": 128, "matryoshka_dims": [128, 256, 512, 1024, 2048],
      "task_names": ["retrieval", "text-matching", "code"], "single_vector_pool_strategy": "mean",
      "truncate_dim": null, "torch_dtype": "bfloat16", "verbosity": 1
    }"#;
    let c = JinaConfig::from_json(json).unwrap();
    assert_eq!(c.text.head_dim, 128);
    assert_eq!(c.text.n_rep(), 8);
    assert_eq!(c.text.intermediate_size, 11008);
    assert_eq!(c.text.special.eos_token_id, Some(151645));
    assert_eq!(c.text.special.video_token_id, Some(151656));
    assert_eq!(c.matryoshka_dims.last(), Some(&2048));
    assert_eq!(c.truncate_dim, None);
}
