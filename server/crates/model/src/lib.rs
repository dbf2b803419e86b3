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
mod speculate;
mod tokenizer;

pub use backend::{
    Backend, CancelHook, CancelToken, FinishReason, GenerateRequest, Generation, Healing, StopCheck,
};
pub use error::ModelError;
pub use fake::FakeBackend;
pub use manifest::{
    ContextFormat, ContextSection, FimMode, KvLayout, Manifest, PromptPiece, RemoteSection,
};
pub use onnx::{
    BACKGROUND_CHUNK, DEFAULT_THREADS, KV_CACHE_BUDGET_BYTES, OnnxBackend, OnnxOptions,
};
pub use remote::RemoteBackend;
pub use runtime::{
    ORT_VERSION, OrtLibrary, build_info, data_dir, default_model_for_tests, find_onnxruntime,
    init_onnxruntime, install_dir, models_dir,
};
pub use speculate::{SpeculationStats, VERIFY_MARGIN};
pub use tokenizer::ModelTokenizer;

/// Loads the model a manifest describes: its `[onnx]` model in-process, or its `[remote]` server
/// when it has no `[onnx]` section (or when `prefer_remote` is set and it has both).
pub fn load_backend(
    manifest_path: &std::path::Path,
    options: &OnnxOptions,
    prefer_remote: bool,
) -> Result<std::sync::Arc<dyn Backend>, ModelError> {
    let manifest = Manifest::load(manifest_path)?;
    if manifest.remote.is_some() && (prefer_remote || manifest.onnx.is_none()) {
        return Ok(std::sync::Arc::new(RemoteBackend::load(manifest_path)?));
    }
    Ok(std::sync::Arc::new(OnnxBackend::load(
        manifest_path,
        options,
    )?))
}
