//! The model runtime: manifest, tokenizer, and the [`Backend`] trait with its implementations.
//!
//! Owns: reading `model.toml`, the tokenizer and its byte table, the ONNX Runtime backend with its
//! KV cache and prefix reuse, an OpenAI-compatible remote backend, and a deterministic fake
//! backend for tests.
//! Must not: know about editors, documents or LSP; decide what a good suggestion is (that is
//! `moat-complete`'s job). Everything model-specific comes from the manifest, never from code.

mod backend;
mod error;
mod fake;
mod manifest;
mod onnx;
mod remote;
mod runtime;
mod tokenizer;

pub use backend::{Backend, CancelToken, FinishReason, GenerateRequest, Generation, StopCheck};
pub use error::ModelError;
pub use fake::FakeBackend;
pub use manifest::{FimMode, KvLayout, Manifest, PromptPiece, RemoteSection};
pub use onnx::{DEFAULT_THREADS, OnnxBackend, OnnxOptions};
pub use remote::RemoteBackend;
pub use runtime::{
    ORT_VERSION, OrtLibrary, build_info, find_onnxruntime, init_onnxruntime, install_dir,
};
pub use tokenizer::ModelTokenizer;
