//! The model's tokenizer plus what decoding needs beyond it: the raw bytes of every token (for
//! byte-exact streaming and token healing) and the ids of the manifest's special tokens.

use std::path::Path;

use tokenizers::{DecoderWrapper, Tokenizer};

use crate::{ContextFormat, Manifest, ModelError, PromptPiece};

pub struct ModelTokenizer {
    inner: Tokenizer,
    /// Raw bytes each token id stands for.
    token_bytes: Vec<Vec<u8>>,
    /// Ids that end generation.
    stop_ids: Vec<u32>,
    /// Ids of all special (added) tokens: never offered as a healed first token.
    special_ids: Vec<u32>,
    template: Vec<TemplatePiece>,
    file_separator: Option<u32>,
    repo_name: Option<u32>,
    context_format: ContextFormat,
}

/// File-separator tokens of the model families that have one, looked up in the vocabulary when
/// the manifest names none (Qwen2.5-Coder, StarCoder2).
const FILE_SEPARATORS: [&str; 2] = ["<|file_sep|>", "<file_sep>"];
/// Repository-name tokens, likewise.
const REPO_NAMES: [&str; 2] = ["<|repo_name|>", "<repo_name>"];

#[derive(Debug, Clone)]
enum TemplatePiece {
    Token(u32),
    Prefix,
    Suffix,
}

impl ModelTokenizer {
    pub fn load(path: &Path, manifest: &Manifest) -> Result<Self, ModelError> {
        let err = |message: String| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(|e| err(e.to_string()))?;
        // Text from the user's files is never read as a special token.
        inner.set_encode_special_tokens(true);
        let vocab_size = inner.get_vocab_size(true);
        let byte_level = matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_)));
        let inverse = byte_level_inverse();
        let added = inner.get_added_tokens_decoder();
        let mut token_bytes = vec![Vec::new(); vocab_size];
        for (id, slot) in token_bytes.iter_mut().enumerate() {
            let id = id as u32;
            if let Some(tok) = added.get(&id) {
                *slot = tok.content.as_bytes().to_vec();
                continue;
            }
            let Some(piece) = inner.id_to_token(id) else {
                continue;
            };
            *slot = piece_bytes(&piece, byte_level, &inverse);
        }
        let special_ids = added.keys().copied().collect();
        let id_of = |name: &str, what: &str| {
            inner.token_to_id(name).ok_or_else(|| {
                err(format!(
                    "{what} token {name:?} (from model.toml) is not in the vocabulary"
                ))
            })
        };
        let mut stop_ids = vec![id_of(&manifest.tokens.eos, "tokens.eos")?];
        for s in &manifest.tokens.stop {
            stop_ids.push(id_of(s, "tokens.stop")?);
        }
        let pieces = manifest.template().map_err(err)?;
        let mut template = Vec::new();
        for p in pieces {
            template.push(match p {
                PromptPiece::Special(s) => TemplatePiece::Token(id_of(&s, "FIM template")?),
                PromptPiece::Prefix => TemplatePiece::Prefix,
                PromptPiece::Suffix => TemplatePiece::Suffix,
            });
        }
        // A special token the manifest names must exist; one it leaves out is taken from the
        // vocabulary when the model family has it (models imported before these fields existed).
        let special =
            |given: &str, what: &str, known: &[&str]| -> Result<Option<u32>, ModelError> {
                if !given.is_empty() {
                    return id_of(given, what).map(Some);
                }
                Ok(known
                    .iter()
                    .filter_map(|t| inner.token_to_id(t))
                    .find(|id| added.contains_key(id)))
            };
        let file_separator = special(
            &manifest.tokens.file_separator,
            "tokens.file_separator",
            &FILE_SEPARATORS,
        )?;
        let repo_name = special(&manifest.tokens.repo_name, "tokens.repo_name", &REPO_NAMES)?;
        let context_format = match manifest.context.format {
            Some(ContextFormat::Repository) if file_separator.is_none() || repo_name.is_none() => {
                return Err(err(
                    "context.format = \"repository\" needs tokens.file_separator and \
                     tokens.repo_name"
                        .into(),
                ));
            }
            Some(ContextFormat::FileSeparator) if file_separator.is_none() => {
                return Err(err(
                    "context.format = \"file-separator\" needs tokens.file_separator".into(),
                ));
            }
            Some(format) => format,
            None => match (file_separator, repo_name) {
                (Some(_), Some(_)) => ContextFormat::Repository,
                (Some(_), None) => ContextFormat::FileSeparator,
                _ => ContextFormat::Comments,
            },
        };
        Ok(Self {
            inner,
            token_bytes,
            stop_ids,
            special_ids,
            template,
            file_separator,
            repo_name,
            context_format,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self.inner.encode_fast(text, false) {
            Ok(enc) => enc.get_ids().to_vec(),
            Err(e) => {
                tracing::warn!("tokenizer failed on input: {e}");
                Vec::new()
            }
        }
    }

    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter()
            .flat_map(|&id| self.token_bytes(id).iter().copied())
            .collect()
    }

    /// Whether generating `id` ends a suggestion: the manifest's eos and stop tokens, and any
    /// other special token (a FIM sentinel or file separator is never text to insert; an
    /// undertrained model does emit them).
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.contains(&id) || self.special_ids.contains(&id)
    }

    /// The manifest's end-of-text token.
    pub fn eos(&self) -> u32 {
        self.stop_ids[0]
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Builds the FIM prompt from encoded pieces: `context` (repository snippets) first, then the
    /// manifest's template with special tokens by id.
    pub fn fim_prompt(&self, context: &[u32], prefix_ids: &[u32], suffix_ids: &[u32]) -> Vec<u32> {
        let mut ids = context.to_vec();
        for piece in &self.template {
            match piece {
                TemplatePiece::Token(id) => ids.push(*id),
                TemplatePiece::Prefix => ids.extend_from_slice(prefix_ids),
                TemplatePiece::Suffix => ids.extend_from_slice(suffix_ids),
            }
        }
        ids
    }

    /// The file-separator token, when the model has one: repository context is given as
    /// `<file_sep>path\ncode` blocks before the FIM prompt.
    pub fn file_separator(&self) -> Option<u32> {
        self.file_separator
    }

    /// The repository-name token, when the model has one.
    pub fn repo_name(&self) -> Option<u32> {
        self.repo_name
    }

    /// How repository context is laid out: the manifest's `context.format`, else `repository`
    /// when the model has both a repository-name and a file-separator token, `file-separator`
    /// when it has only the latter, else `comments`.
    pub fn context_format(&self) -> ContextFormat {
        self.context_format
    }

    /// Whether the template places the prefix last (then the prompt is `...prefix` and the model
    /// continues it directly).
    pub fn prefix_last(&self) -> bool {
        matches!(self.template.last(), Some(TemplatePiece::Prefix))
    }
}

/// GPT-2's byte-to-unicode table, inverted: the char a byte-level BPE uses → the byte.
fn byte_level_inverse() -> std::collections::HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = std::collections::HashMap::new();
    let mut n = 0;
    for b in 0u32..=255 {
        let c = if printable.contains(&b) {
            b
        } else {
            n += 1;
            255 + n
        };
        if let Some(ch) = char::from_u32(c) {
            map.insert(ch, b as u8);
        }
    }
    map
}

fn piece_bytes(
    piece: &str,
    byte_level: bool,
    inverse: &std::collections::HashMap<char, u8>,
) -> Vec<u8> {
    if byte_level && piece.chars().all(|c| inverse.contains_key(&c)) {
        return piece.chars().map(|c| inverse[&c]).collect();
    }
    // SentencePiece-style: byte fallback tokens and the word-boundary marker.
    if piece.len() == 6
        && piece.starts_with("<0x")
        && piece.ends_with('>')
        && let Ok(b) = u8::from_str_radix(&piece[3..5], 16)
    {
        return vec![b];
    }
    piece.replace('\u{2581}', " ").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_is_a_bijection() {
        let inv = byte_level_inverse();
        assert_eq!(inv.len(), 256);
        assert_eq!(inv[&'Ġ'], b' ');
        assert_eq!(inv[&'Ċ'], b'\n');
        assert_eq!(piece_bytes("Ġfoo", true, &inv), b" foo");
        assert_eq!(piece_bytes("<0x0A>", false, &inv), b"\n");
        assert_eq!(piece_bytes("\u{2581}x", false, &inv), b" x");
    }

    #[test]
    fn every_special_token_stops_generation() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../model-assets/tiny-llama");
        let manifest = Manifest::load(&dir).unwrap();
        let tok = ModelTokenizer::load(&dir.join(&manifest.model.tokenizer), &manifest).unwrap();
        for name in [
            &manifest.tokens.fim_prefix,
            &manifest.tokens.fim_suffix,
            &manifest.tokens.fim_middle,
            &manifest.tokens.eos,
        ] {
            let id = tok.token_id(name).unwrap();
            assert!(tok.is_stop(id), "{name}");
        }
        let text = tok.encode("let x = 1;");
        assert!(text.iter().all(|&id| !tok.is_stop(id)));
    }
}
