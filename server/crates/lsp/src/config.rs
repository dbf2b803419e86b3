//! Settings, from `initializationOptions` and `workspace/didChangeConfiguration` (section `moat`).
//! Every option is documented in README.md; unknown keys are ignored, bad values are reported and
//! the previous value kept.

use std::path::PathBuf;

use moat_complete::CompletionSettings;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    /// Folder (or model.toml) of the model to run. Default: the bundled default model.
    pub model_path: Option<PathBuf>,
    /// Path to libonnxruntime (file or folder). Default: ORT_DYLIB_PATH, then moat's install folder.
    pub onnxruntime_path: Option<PathBuf>,
    /// Wait this long after the last keystroke before asking the model.
    pub debounce_ms: u64,
    /// A request that arrives while the model loads waits for it at most this long (then gets an
    /// empty answer); 0 = answer at once, empty. A newer request for the document replaces it.
    pub load_wait_ms: u64,
    pub max_tokens: usize,
    /// Threads for the model (ONNX Runtime intra-op threads); 0 = the model's recommendation
    /// (`[runtime] threads` in model.toml), else 2.
    pub threads: usize,
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    pub multiline: bool,
    pub max_lines: usize,
    pub skip_in_comments: bool,
    pub skip_in_strings: bool,
    /// Most milliseconds a request may spend computing prompt the model has not cached (a file
    /// just opened, a jump elsewhere); over it, a short prompt (the lines around the cursor)
    /// answers with one line while the full prompt is computed in the background. 0 = off.
    pub cold_prompt_ms: u64,
    /// Master switch.
    pub enable: bool,
    /// Language ids (LSP `languageId`) to serve; empty = all.
    pub enabled_languages: Vec<String>,
    /// Language ids never to serve.
    pub disabled_languages: Vec<String>,
    /// Index the workspace and give the model context from other files.
    pub repo_context: bool,
    /// Most bytes of repository context per completion.
    pub repo_context_bytes: usize,
    /// Record which suggestions were accepted, on this machine only (docs/feedback.md);
    /// `MOAT_FEEDBACK=0` turns it off too.
    pub feedback: bool,
    /// Also record the source text around accepted suggestions (for `moat dataset build
    /// --feedback`); off by default.
    pub feedback_source_text: bool,
    /// Offer code actions that write code (fill a body, doc comment, fix, test).
    pub code_actions: bool,
    /// Code actions (`fillBody`, `writeDoc`, `fixDiagnostic`, `writeTest`, or `all`) run on the
    /// model manifest's `[remote]` server instead of the local model.
    pub code_action_remote: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let c = CompletionSettings::default();
        Self {
            model_path: None,
            onnxruntime_path: None,
            debounce_ms: 25,
            // Under Helix's default 20 s request timeout.
            load_wait_ms: 15_000,
            max_tokens: c.max_new_tokens,
            threads: 0,
            prefix_tokens: c.prefix_tokens,
            suffix_tokens: c.suffix_tokens,
            multiline: c.multiline,
            max_lines: c.max_lines,
            skip_in_comments: c.skip_in_comments,
            skip_in_strings: c.skip_in_strings,
            cold_prompt_ms: 150,
            enable: true,
            enabled_languages: Vec::new(),
            disabled_languages: Vec::new(),
            repo_context: true,
            repo_context_bytes: 3000,
            code_actions: true,
            code_action_remote: Vec::new(),
            feedback: true,
            feedback_source_text: false,
        }
    }
}

impl Config {
    /// Reads settings from a JSON value: either the `moat` section itself or an object holding it.
    pub fn from_json(value: &serde_json::Value) -> Result<Config, String> {
        let section = value.get("moat").unwrap_or(value);
        if section.is_null() {
            return Ok(Config::default());
        }
        serde_json::from_value(section.clone()).map_err(|e| {
            // Name the bad keys: try each on its own.
            let bad: Vec<String> = section
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, v)| {
                            serde_json::from_value::<Config>(serde_json::json!({ k.as_str(): v }))
                                .is_err()
                        })
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect()
                })
                .unwrap_or_default();
            if bad.is_empty() {
                format!("invalid moat settings: {e}")
            } else {
                format!("invalid moat settings ({e}): {}", bad.join(", "))
            }
        })
    }

    /// Applies the keys present in `value` over `self` (absent keys keep their value); invalid
    /// keys are skipped and named in the returned message.
    pub fn merged(&self, value: &serde_json::Value) -> (Config, Option<String>) {
        let section = value.get("moat").unwrap_or(value);
        let Some(source) = section.as_object() else {
            let problem = (!section.is_null())
                .then(|| format!("moat settings must be an object, got {section}"));
            return (self.clone(), problem);
        };
        let problem = Config::from_json(section).err();
        let mut merged = serde_json::to_value(self).unwrap_or_default();
        if let Some(target) = merged.as_object_mut() {
            for (k, v) in source {
                if serde_json::from_value::<Config>(serde_json::json!({ k.as_str(): v })).is_ok() {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
        (
            serde_json::from_value(merged).unwrap_or_else(|_| self.clone()),
            problem,
        )
    }

    pub fn completion_settings(&self) -> CompletionSettings {
        CompletionSettings {
            max_new_tokens: self.max_tokens.clamp(1, 512),
            prefix_tokens: self.prefix_tokens.max(16),
            suffix_tokens: self.suffix_tokens,
            multiline: self.multiline,
            max_lines: self.max_lines.max(1),
            skip_in_comments: self.skip_in_comments,
            skip_in_strings: self.skip_in_strings,
            cold_prompt_budget: (self.cold_prompt_ms > 0)
                .then(|| std::time::Duration::from_millis(self.cold_prompt_ms)),
            ..CompletionSettings::default()
        }
    }

    pub fn serves_language(&self, language_id: &str) -> bool {
        self.enable
            && !self.disabled_languages.iter().any(|l| l == language_id)
            && (self.enabled_languages.is_empty()
                || self.enabled_languages.iter().any(|l| l == language_id))
    }

    /// Whether switching from `self` to `other` needs the model loaded again.
    pub fn model_changed(&self, other: &Config) -> bool {
        self.model_path != other.model_path
            || self.onnxruntime_path != other.onnxruntime_path
            || self.threads != other.threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_section_or_object() {
        let c = Config::from_json(
            &serde_json::json!({"moat": {"debounceMs": 5, "disabledLanguages": ["markdown"]}}),
        )
        .unwrap();
        assert_eq!(c.debounce_ms, 5);
        assert!(!c.serves_language("markdown"));
        assert!(c.serves_language("python"));
        let c = Config::from_json(&serde_json::json!({"maxTokens": 7})).unwrap();
        assert_eq!(c.max_tokens, 7);
        let e = Config::from_json(&serde_json::json!({"maxTokens": "lots", "debounceMs": 3}))
            .unwrap_err();
        assert!(e.contains("maxTokens = \"lots\""), "{e}");
        let (c, e) =
            Config::default().merged(&serde_json::json!({"maxTokens": "lots", "debounceMs": 3}));
        assert_eq!(c.debounce_ms, 3, "valid keys still apply");
        assert_eq!(c.max_tokens, Config::default().max_tokens);
        assert!(e.is_some());
        // Absent keys keep their current value.
        let (d, e) = c.merged(&serde_json::json!({"moat": {"threads": 4}}));
        assert_eq!((d.debounce_ms, d.threads, e), (3, 4, None));
        assert_eq!(
            Config::from_json(&serde_json::Value::Null).unwrap(),
            Config::default()
        );
    }
}
