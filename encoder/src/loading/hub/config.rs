//! Where and how to download: the `huggingface_hub` library's environment variables.

use std::path::PathBuf;

use crate::loading::source::HubCache;

/// The public hub; `HF_ENDPOINT` points elsewhere (a mirror, or a test server).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Settings of one download.
#[derive(Clone)]
pub struct HubConfig {
    /// Base URL without a trailing slash (`HF_ENDPOINT`).
    pub endpoint: String,
    /// The hub cache written to (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
    /// `~/.cache/huggingface/hub`); `None` when no variable names a directory.
    pub cache_dir: Option<PathBuf>,
    /// Sent as `Authorization: Bearer` to the endpoint, never to the hosts it redirects to
    /// (`HF_TOKEN`, else the file `HF_TOKEN_PATH`, else `HF_HOME/token`, which `hf auth login`
    /// writes).
    pub token: Option<String>,
    /// No network access at all (`HF_HUB_OFFLINE` = 1, true, yes or on).
    pub offline: bool,
    /// Further attempts per file after a broken transfer, each resuming where the last stopped.
    pub retries: u32,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .field("retries", &self.retries)
            .finish()
    }
}

impl HubConfig {
    /// The settings this process's environment gives.
    pub fn from_env() -> Self {
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    /// The settings that `var` (an environment lookup) gives; empty values count as unset.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let token = var("HF_TOKEN")
            // The variable's name before huggingface_hub 0.20, still honoured there.
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .or_else(|| hf_home(&var).map(|home| home.join("token")))?;
                std::fs::read_to_string(path).ok()
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        HubConfig {
            endpoint,
            cache_dir: HubCache::from_vars(&var).dirs.into_iter().next(),
            token,
            offline,
            retries: 3,
        }
    }
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
fn hf_home(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("HF_HOME").map(PathBuf::from).or_else(|| {
        var("XDG_CACHE_HOME")
            .map(|p| PathBuf::from(p).join("huggingface"))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache").join("huggingface")))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> HubConfig {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_vars(&move |k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let c = config(&[("HOME", "/home/u")]);
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(
            c.cache_dir.as_deref(),
            Some(Path::new("/home/u/.cache/huggingface/hub"))
        );
        assert!(!c.offline && c.token.is_none());
        assert_eq!(config(&[]).cache_dir, None);
    }

    #[test]
    fn variables_override_in_huggingface_hubs_order() {
        let c = config(&[
            ("HOME", "/home/u"),
            ("HF_HOME", "/hf"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_TOKEN", " hf_abc\n"),
            ("HF_HUB_OFFLINE", "1"),
        ]);
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert_eq!(c.cache_dir.as_deref(), Some(Path::new("/hf/hub")));
        assert_eq!(c.token.as_deref(), Some("hf_abc"));
        assert!(c.offline);
        let c = config(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")]);
        assert_eq!(c.cache_dir.as_deref(), Some(Path::new("/cache")));
        for (value, offline) in [("true", true), ("ON", true), ("0", false), ("", false)] {
            assert_eq!(
                config(&[("HF_HUB_OFFLINE", value)]).offline,
                offline,
                "{value:?}"
            );
        }
        // Redacted in logs.
        assert!(!format!("{:?}", config(&[("HF_TOKEN", "hf_abc")])).contains("hf_abc"));
    }

    #[test]
    fn the_token_file_of_hf_auth_login_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("token"), "hf_from_file\n").unwrap();
        let home = tmp.path().to_str().unwrap();
        assert_eq!(
            config(&[("HF_HOME", home)]).token.as_deref(),
            Some("hf_from_file")
        );
        assert_eq!(
            config(&[("HF_HOME", home), ("HF_TOKEN", "hf_env")])
                .token
                .as_deref(),
            Some("hf_env")
        );
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, "hf_path").unwrap();
        assert_eq!(
            config(&[("HF_TOKEN_PATH", elsewhere.to_str().unwrap())])
                .token
                .as_deref(),
            Some("hf_path")
        );
    }
}
