//! The model the server runs, loaded in the background. Requests never wait for loading: until
//! the model is ready they get an empty answer at once.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use moat_model::{Backend, OnnxOptions};

#[derive(Clone)]
pub enum ModelState {
    Loading,
    Ready(Arc<dyn Backend>),
    Failed(String),
}

#[derive(Clone, Default)]
pub struct ModelSlot {
    state: Arc<RwLock<Option<ModelState>>>,
    /// Bumped on every (re)load so a slow, superseded load does not overwrite a newer one.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl ModelSlot {
    pub fn state(&self) -> ModelState {
        self.state
            .read()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or(ModelState::Loading)
    }

    /// Loads the model on a blocking thread; `done` is called with the outcome.
    pub fn load(
        &self,
        manifest: PathBuf,
        options: OnnxOptions,
        done: impl FnOnce(Result<String, String>) + Send + 'static,
    ) {
        use std::sync::atomic::Ordering;
        let my_generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut s) = self.state.write() {
            *s = Some(ModelState::Loading);
        }
        let slot = self.clone();
        tokio::task::spawn_blocking(move || {
            // `[onnx]` in-process, or the manifest's `[remote]` server when it has no `[onnx]`.
            let result = moat_model::load_backend(&manifest, &options, false);
            if slot.generation.load(Ordering::SeqCst) != my_generation {
                return;
            }
            let outcome = match result {
                Ok(backend) => {
                    let describe = backend.describe();
                    if let Ok(mut s) = slot.state.write() {
                        *s = Some(ModelState::Ready(backend));
                    }
                    Ok(describe)
                }
                Err(e) => {
                    let message = format!("cannot load the model {}: {e}", manifest.display());
                    if let Ok(mut s) = slot.state.write() {
                        *s = Some(ModelState::Failed(message.clone()));
                    }
                    Err(message)
                }
            };
            done(outcome);
        });
    }
}
