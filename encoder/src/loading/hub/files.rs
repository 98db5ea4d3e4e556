//! Which files of a repository the loader reads: a model repository often also holds PyTorch,
//! ONNX, OpenVINO or TensorFlow copies of the weights, many times the size of what Quiver needs.

use std::collections::{BTreeSet, HashSet};

use serde::Deserialize;

use super::HubError;

/// Files read when present: the sentence-transformers pipeline, the tokenizer's length limit,
/// jina's image preprocessing and task adapters.
const OPTIONAL: [&str; 6] = [
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "preprocessor_config.json",
    "adapters/adapter_config.json",
    "adapters/adapter_model.safetensors",
];

#[derive(Deserialize)]
struct Module {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::HashMap<String, String>,
}

/// The files to fetch of a repository holding `present`, small ones first. `read` fetches a file
/// and returns its text; it is called for `modules.json` and the shard index, whose contents name
/// further files.
pub(crate) fn needed(
    repo: &str,
    present: &BTreeSet<String>,
    read: &mut dyn FnMut(&str) -> Result<String, HubError>,
) -> Result<Vec<String>, HubError> {
    let refuse = |message: String| HubError::Repo {
        repo: repo.to_string(),
        message,
    };
    for required in ["config.json", "tokenizer.json"] {
        if !present.contains(required) {
            return Err(refuse(format!(
                "the repository has no {required}; Quiver loads safetensors checkpoints with a \
                 config.json and a fast tokenizer (tokenizer.json)"
            )));
        }
    }
    let mut files = vec!["config.json".to_string(), "tokenizer.json".to_string()];
    files.extend(
        OPTIONAL
            .iter()
            .filter(|f| present.contains(**f))
            .map(|f| f.to_string()),
    );
    if present.contains("modules.json") {
        let text = read("modules.json")?;
        let modules: Vec<Module> =
            serde_json::from_str(&text).map_err(|e| refuse(format!("modules.json: {e}")))?;
        for module in modules.iter().filter(|m| !m.path.is_empty()) {
            let config = format!("{}/config.json", module.path.trim_end_matches('/'));
            if present.contains(&config) && !files.contains(&config) {
                files.push(config);
            }
        }
    }
    let index = "model.safetensors.index.json";
    if present.contains(index) {
        let text = read(index)?;
        let parsed: ShardIndex =
            serde_json::from_str(&text).map_err(|e| refuse(format!("{index}: {e}")))?;
        let shards: BTreeSet<String> = parsed.weight_map.into_values().collect();
        if shards.is_empty() {
            return Err(refuse(format!("{index} names no shards")));
        }
        if let Some(missing) = shards.iter().find(|s| !present.contains(*s)) {
            return Err(refuse(format!(
                "{index} names {missing}, which the repository does not hold"
            )));
        }
        files.push(index.to_string());
        files.extend(shards);
    } else if present.contains("model.safetensors") {
        files.push("model.safetensors".to_string());
    } else {
        let others: Vec<&str> = present
            .iter()
            .map(String::as_str)
            .filter(|f| {
                [".bin", ".pt", ".onnx", ".h5", ".gguf"]
                    .iter()
                    .any(|ext| f.ends_with(ext))
            })
            .take(3)
            .collect();
        return Err(refuse(format!(
            "the repository has no model.safetensors or model.safetensors.index.json{}; Quiver \
             reads safetensors weights only",
            if others.is_empty() {
                String::new()
            } else {
                format!(" (it has {})", others.join(", "))
            }
        )));
    }
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[&str]) -> BTreeSet<String> {
        files.iter().map(|f| f.to_string()).collect()
    }

    fn reader<'a>(
        texts: &'a [(&'a str, &'a str)],
        asked: &'a mut Vec<String>,
    ) -> impl FnMut(&str) -> Result<String, HubError> + 'a {
        move |f: &str| {
            asked.push(f.to_string());
            Ok(texts
                .iter()
                .find(|(name, _)| *name == f)
                .map(|(_, t)| t.to_string())
                .unwrap_or_else(|| panic!("read {f}")))
        }
    }

    #[test]
    fn a_sentence_transformers_repository_needs_its_pipeline_not_its_other_formats() {
        // The layout of all-MiniLM-L6-v2.
        let present = set(&[
            ".gitattributes",
            "1_Pooling/config.json",
            "README.md",
            "config.json",
            "config_sentence_transformers.json",
            "data_config.json",
            "model.safetensors",
            "modules.json",
            "onnx/model.onnx",
            "openvino/openvino_model.bin",
            "pytorch_model.bin",
            "rust_model.ot",
            "sentence_bert_config.json",
            "special_tokens_map.json",
            "tf_model.h5",
            "tokenizer.json",
            "tokenizer_config.json",
            "train_script.py",
            "vocab.txt",
        ]);
        let modules = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
            {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#;
        let mut asked = Vec::new();
        let texts = [("modules.json", modules)];
        let files = needed("o/m", &present, &mut reader(&texts, &mut asked)).unwrap();
        assert_eq!(
            files,
            [
                "config.json",
                "tokenizer.json",
                "tokenizer_config.json",
                "modules.json",
                "sentence_bert_config.json",
                "1_Pooling/config.json",
                "model.safetensors",
            ]
        );
        assert_eq!(asked, ["modules.json"]);
    }

    #[test]
    fn a_sharded_checkpoint_needs_every_shard_its_index_names() {
        let present = set(&[
            "config.json",
            "tokenizer.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "adapters/adapter_config.json",
            "adapters/adapter_model.safetensors",
            "preprocessor_config.json",
            "modeling_jina_embeddings_v4.py",
        ]);
        let index = r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#;
        let mut asked = Vec::new();
        let texts = [("model.safetensors.index.json", index)];
        let files = needed("o/m", &present, &mut reader(&texts, &mut asked)).unwrap();
        assert_eq!(
            files,
            [
                "config.json",
                "tokenizer.json",
                "preprocessor_config.json",
                "adapters/adapter_config.json",
                "adapters/adapter_model.safetensors",
                "model.safetensors.index.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
            ]
        );
    }

    #[test]
    fn repositories_quiver_cannot_load_are_refused_by_name() {
        let mut asked = Vec::new();
        let err = needed(
            "o/m",
            &set(&["config.json", "tokenizer.json", "pytorch_model.bin"]),
            &mut reader(&[], &mut asked),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("o/m") && err.contains("pytorch_model.bin"),
            "{err}"
        );
        assert!(err.contains("safetensors"), "{err}");

        let err = needed(
            "o/m",
            &set(&["config.json", "model.safetensors", "vocab.txt"]),
            &mut reader(&[], &mut asked),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no tokenizer.json"), "{err}");

        let index = r#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#;
        let texts = [("model.safetensors.index.json", index)];
        let err = needed(
            "o/m",
            &set(&[
                "config.json",
                "tokenizer.json",
                "model.safetensors.index.json",
            ]),
            &mut reader(&texts, &mut asked),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("model-00001-of-00002.safetensors"), "{err}");
    }
}
