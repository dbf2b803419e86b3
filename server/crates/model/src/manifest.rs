//! `model.toml`: everything the server knows about a model (see docs/model-manifest.md).
//! Owns parsing and validating the manifest on its own; checking it against the ONNX graph is the
//! backend's job.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ModelError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: ModelSection,
    pub tokens: TokenSection,
    pub fim: FimSection,
    #[serde(default)]
    pub onnx: Option<OnnxSection>,
    /// An OpenAI-compatible completions server to run the model instead (see `RemoteBackend`).
    #[serde(default)]
    pub remote: Option<RemoteSection>,
    /// How to run the model when the user does not say.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// How repository context (other files) is laid out before the FIM prompt.
    #[serde(default)]
    pub context: ContextSection,
    /// Folder the manifest was read from; relative paths resolve against it.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub name: String,
    #[serde(default)]
    pub onnx: Option<String>,
    pub tokenizer: String,
    pub context_length: usize,
}

/// `[runtime]`: recommendations measured for this model.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Intra-op threads to use when the user leaves `threads` at 0 (auto). A model so small that
    /// a second thread costs more to wake than it saves says 1.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Speculative decoding by prompt lookup (on by default where the graph allows it: a
    /// `gqa-shared` model whose logits cover every fed position). `false` turns it off.
    #[serde(default)]
    pub speculative: Option<bool>,
    /// A verified draft row whose greedy choice leads the runner-up by fewer logits is
    /// recomputed by a one-token step (absent: `VERIFY_MARGIN`, 1.25, measured on an int4 model
    /// whose batched and one-token passes round differently; 0 for a float model).
    #[serde(default)]
    pub verify_margin: Option<f32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    #[serde(default)]
    pub bos: String,
    pub eos: String,
    #[serde(default)]
    pub stop: Vec<String>,
    pub fim_prefix: String,
    pub fim_suffix: String,
    pub fim_middle: String,
    #[serde(default)]
    pub file_separator: String,
    /// Opens a repository-level prompt (`<|repo_name|>name`), in the `repository` format.
    #[serde(default)]
    pub repo_name: String,
}

/// How other files are laid out before the current file's FIM prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContextFormat {
    /// The repository-level format Qwen2.5-Coder and StarCoder2 were trained on:
    /// `{repo_name}name\n`, then `{file_separator}path\ncontent\n` per file, then
    /// `{file_separator}current-path\n` right before the FIM prompt.
    Repository,
    /// `{file_separator}path\ncontent\n` per file, nothing for the current file.
    FileSeparator,
    /// Path-labelled blocks commented out in the current file's language (any model).
    Comments,
}

/// `[context]`: the layout of repository context. Absent fields are derived from the
/// tokenizer's special tokens (see [`crate::ModelTokenizer::context_format`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextSection {
    #[serde(default)]
    pub format: Option<ContextFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FimMode {
    Spm,
    Psm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FimSection {
    pub mode: FimMode,
    #[serde(default)]
    pub template: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvLayout {
    /// onnxruntime-genai builder: GroupQueryAttention, one buffer bound as past and present.
    GqaShared,
    /// optimum-style: present = concat(past, new).
    Concat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxSection {
    pub layout: KvLayout,
    pub num_layers: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    #[serde(default = "default_kv_dtype")]
    pub kv_dtype: String,
    #[serde(default = "default_input_ids")]
    pub input_ids: String,
    #[serde(default = "default_attention_mask")]
    pub attention_mask: String,
    #[serde(default)]
    pub position_ids: String,
    #[serde(default = "default_past_key")]
    pub past_key: String,
    #[serde(default = "default_past_value")]
    pub past_value: String,
    #[serde(default = "default_present_key")]
    pub present_key: String,
    #[serde(default = "default_present_value")]
    pub present_value: String,
    #[serde(default = "default_logits")]
    pub logits: String,
    /// An int64 `[1]` input saying how many of the last fed positions get logits (the import's
    /// LM-head edit, `model-assets/train/lm_head_rows.py`); used when the graph has it.
    #[serde(default = "default_logits_to_keep")]
    pub logits_to_keep: String,
}

fn default_kv_dtype() -> String {
    "float32".into()
}
fn default_input_ids() -> String {
    "input_ids".into()
}
fn default_attention_mask() -> String {
    "attention_mask".into()
}
fn default_past_key() -> String {
    "past_key_values.{layer}.key".into()
}
fn default_past_value() -> String {
    "past_key_values.{layer}.value".into()
}
fn default_present_key() -> String {
    "present.{layer}.key".into()
}
fn default_present_value() -> String {
    "present.{layer}.value".into()
}
fn default_logits() -> String {
    "logits".into()
}
fn default_logits_to_keep() -> String {
    "logits_to_keep".into()
}

impl OnnxSection {
    pub fn layer_name(template: &str, layer: usize) -> String {
        template.replace("{layer}", &layer.to_string())
    }
}

/// `[remote]`: an OpenAI-compatible server (vLLM, TGI, llama.cpp server, a hosted API) that runs
/// the model; the tokenizer and FIM template still come from this manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteSection {
    /// Server root, e.g. `http://127.0.0.1:8000` (requests go to `{base_url}/v1/completions`).
    pub base_url: String,
    /// The `model` field sent with each request.
    pub model: String,
    /// Name of the environment variable holding the API key (sent as `Authorization: Bearer`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Per-request timeout in seconds.
    #[serde(default = "default_remote_timeout")]
    pub timeout_secs: u64,
}

fn default_remote_timeout() -> u64 {
    30
}

/// One piece of a FIM prompt: a special token (by its string) or one of the two text slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPiece {
    Special(String),
    Prefix,
    Suffix,
}

impl Manifest {
    /// Reads `model.toml` from a file or from a folder that contains one.
    pub fn load(path: &Path) -> Result<Manifest, ModelError> {
        let file = if path.is_dir() {
            path.join("model.toml")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|source| ModelError::Io {
            path: file.clone(),
            source,
        })?;
        let mut manifest = Self::parse(&text, &file)?;
        manifest.dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(manifest)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ModelError> {
        let err = |message: String| ModelError::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let manifest: Manifest = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if manifest.model.context_length < 16 {
            return Err(err("model.context_length must be at least 16".into()));
        }
        manifest.template().map_err(err)?;
        if let Some(onnx) = &manifest.onnx {
            if manifest.model.onnx.is_none() {
                return Err(err(
                    "[onnx] is given but model.onnx (the ONNX file) is not".into()
                ));
            }
            if onnx.num_layers == 0 || onnx.num_kv_heads == 0 || onnx.head_dim == 0 {
                return Err(err(
                    "onnx.num_layers, num_kv_heads and head_dim must be > 0".into(),
                ));
            }
            if onnx.kv_dtype != "float32" {
                return Err(err(format!(
                    "onnx.kv_dtype = {:?} is not supported (only \"float32\")",
                    onnx.kv_dtype
                )));
            }
        } else if manifest.model.onnx.is_some() {
            return Err(err(
                "model.onnx is given but the [onnx] section is missing".into()
            ));
        }
        if let Some(remote) = &manifest.remote {
            if !(remote.base_url.starts_with("http://") || remote.base_url.starts_with("https://"))
            {
                return Err(err(format!(
                    "remote.base_url = {:?} must start with http:// or https://",
                    remote.base_url
                )));
            }
            if remote.model.is_empty() {
                return Err(err("remote.model must not be empty".into()));
            }
        }
        Ok(manifest)
    }

    pub fn onnx_path(&self) -> Option<PathBuf> {
        self.model.onnx.as_ref().map(|p| self.dir.join(p))
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(&self.model.tokenizer)
    }

    /// The FIM template as pieces, from `fim.template` or the mode's default.
    pub fn template(&self) -> Result<Vec<PromptPiece>, String> {
        let default = match self.fim.mode {
            FimMode::Spm => "{bos}{fim_prefix}{fim_suffix}{suffix}{fim_middle}{prefix}",
            FimMode::Psm => "{bos}{fim_prefix}{prefix}{fim_suffix}{suffix}{fim_middle}",
        };
        let template = self.fim.template.as_deref().unwrap_or(default);
        let mut pieces = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                return Err(format!(
                    "fim.template: literal text {rest:?} is not allowed"
                ));
            };
            if open != 0 {
                return Err(format!(
                    "fim.template: literal text {:?} is not allowed",
                    &rest[..open]
                ));
            }
            let close = rest.find('}').ok_or("fim.template: unclosed '{'")?;
            let name = &rest[1..close];
            rest = &rest[close + 1..];
            let piece = match name {
                "prefix" => PromptPiece::Prefix,
                "suffix" => PromptPiece::Suffix,
                "bos" if self.tokens.bos.is_empty() => continue,
                "bos" => PromptPiece::Special(self.tokens.bos.clone()),
                "fim_prefix" => PromptPiece::Special(self.tokens.fim_prefix.clone()),
                "fim_suffix" => PromptPiece::Special(self.tokens.fim_suffix.clone()),
                "fim_middle" => PromptPiece::Special(self.tokens.fim_middle.clone()),
                "file_separator" => PromptPiece::Special(self.tokens.file_separator.clone()),
                "eos" => PromptPiece::Special(self.tokens.eos.clone()),
                other => return Err(format!("fim.template: unknown placeholder {{{other}}}")),
            };
            pieces.push(piece);
        }
        if !pieces.contains(&PromptPiece::Prefix) || !pieces.contains(&PromptPiece::Suffix) {
            return Err("fim.template must contain {prefix} and {suffix}".into());
        }
        Ok(pieces)
    }

    /// Whether the prompt ends with the prefix, so that a growing prefix keeps the KV cache valid.
    pub fn prefix_last(&self) -> bool {
        matches!(
            self.template().ok().and_then(|t| t.last().cloned()),
            Some(PromptPiece::Prefix)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[model]
name = "t"
onnx = "model.onnx"
tokenizer = "tokenizer.json"
context_length = 2048
[tokens]
eos = "<eos>"
stop = ["<eos>"]
fim_prefix = "<p>"
fim_suffix = "<s>"
fim_middle = "<m>"
[fim]
mode = "spm"
[onnx]
layout = "gqa-shared"
num_layers = 2
num_kv_heads = 2
head_dim = 32
"#;

    #[test]
    fn parses_defaults() {
        let m = Manifest::parse(BASE, Path::new("model.toml")).unwrap();
        let onnx = m.onnx.as_ref().unwrap();
        assert_eq!(onnx.layout, KvLayout::GqaShared);
        assert_eq!(
            OnnxSection::layer_name(&onnx.past_key, 1),
            "past_key_values.1.key"
        );
        assert!(m.prefix_last());
        assert_eq!(
            m.template().unwrap(),
            vec![
                PromptPiece::Special("<p>".into()),
                PromptPiece::Special("<s>".into()),
                PromptPiece::Suffix,
                PromptPiece::Special("<m>".into()),
                PromptPiece::Prefix
            ]
        );
    }

    #[test]
    fn psm_template_and_bad_placeholders() {
        let psm = BASE.replace("mode = \"spm\"", "mode = \"psm\"");
        let m = Manifest::parse(&psm, Path::new("m")).unwrap();
        assert!(!m.prefix_last());
        let bad = BASE.replace(
            "mode = \"spm\"",
            "mode = \"spm\"\ntemplate = \"{prefix}{nope}{suffix}\"",
        );
        let e = Manifest::parse(&bad, Path::new("m"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown placeholder {nope}"), "{e}");
    }

    #[test]
    fn remote_section_is_optional_and_checked() {
        let base = BASE.replace("onnx = \"model.onnx\"\n", "");
        let base = &base[..base.find("[onnx]").unwrap()];
        let remote = format!(
            "{base}[remote]\nbase_url = \"http://127.0.0.1:8000\"\nmodel = \"m\"\napi_key_env = \"KEY\"\n"
        );
        let m = Manifest::parse(&remote, Path::new("m")).unwrap();
        let r = m.remote.as_ref().unwrap();
        assert_eq!((r.model.as_str(), r.timeout_secs), ("m", 30));
        assert_eq!(r.api_key_env.as_deref(), Some("KEY"));
        assert!(m.onnx.is_none());
        let e = Manifest::parse(&remote.replace("http://", "ftp://"), Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("remote.base_url"), "{e}");
    }

    #[test]
    fn context_format_is_optional() {
        let m = Manifest::parse(BASE, Path::new("m")).unwrap();
        assert_eq!(m.context.format, None);
        assert_eq!(m.tokens.repo_name, "");
        let with = BASE.replace(
            "[fim]",
            "repo_name = \"<r>\"\n[context]\nformat = \"file-separator\"\n[fim]",
        );
        let m = Manifest::parse(&with, Path::new("m")).unwrap();
        assert_eq!(m.context.format, Some(ContextFormat::FileSeparator));
        assert_eq!(m.tokens.repo_name, "<r>");
        let bad = with.replace("file-separator", "xml");
        let e = Manifest::parse(&bad, Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `xml`"), "{e}");
    }

    #[test]
    fn unknown_keys_and_layouts_are_rejected() {
        let e = Manifest::parse(&BASE.replace("gqa-shared", "magic"), Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `magic`"), "{e}");
        let e = Manifest::parse(&format!("{BASE}\nbogus = 1"), Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
