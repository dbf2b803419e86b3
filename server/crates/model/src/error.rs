//! Errors of the model runtime. Each variant says what is wrong and, where it can, how to fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid model manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("cannot load tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("the manifest does not match the ONNX model {path}: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("{0}")]
    Runtime(String),
    #[error("ONNX Runtime error: {0}")]
    Ort(String),
    #[error("prompt of {len} tokens does not fit the model's context of {max} tokens")]
    PromptTooLong { len: usize, max: usize },
    #[error("request cancelled")]
    Cancelled,
}

impl ModelError {
    pub(crate) fn ort(e: impl std::fmt::Display) -> Self {
        ModelError::Ort(e.to_string())
    }
}
