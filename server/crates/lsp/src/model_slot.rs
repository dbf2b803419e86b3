//! The model the server runs, loaded in the background. Nothing waits for loading but the
//! completion requests that arrive meanwhile: each waits (cancellable, bounded by `loadWaitMs`)
//! in [`ModelSlot::wait_until_loaded`] and is answered once the model is ready.
//!
//! Test-only knob: `MOAT_TEST_LOAD_DELAY_MS` (milliseconds) delays every load by that long, so the
//! tests can type while a model "loads" as a big one would. Never set it outside tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use moat_model::{Backend, OnnxOptions};
use tokio::sync::Notify;

/// Environment variable: delay each model load by this many milliseconds (tests only).
pub const TEST_LOAD_DELAY_ENV: &str = "MOAT_TEST_LOAD_DELAY_MS";

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
    generation: Arc<AtomicU64>,
    /// Woken when a load ends (ready or failed).
    loaded: Arc<Notify>,
}

fn test_load_delay() -> Option<Duration> {
    let ms: u64 = std::env::var(TEST_LOAD_DELAY_ENV)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

impl ModelSlot {
    pub fn state(&self) -> ModelState {
        self.state
            .read()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or(ModelState::Loading)
    }

    /// Waits until no load is in progress and returns the outcome (`Ready` or `Failed`).
    /// Cancel-safe: dropping the future just stops waiting.
    pub async fn wait_until_loaded(&self) -> ModelState {
        loop {
            let notified = std::pin::pin!(self.loaded.notified());
            let mut notified = notified;
            // Registered before the state is read, so a load that ends in between still wakes us.
            notified.as_mut().enable();
            let state = self.state();
            if !matches!(state, ModelState::Loading) {
                return state;
            }
            notified.await;
        }
    }

    /// Loads the model on a blocking thread; `done` is called with the outcome.
    pub fn load(
        &self,
        manifest: PathBuf,
        options: OnnxOptions,
        done: impl FnOnce(Result<String, String>) + Send + 'static,
    ) {
        let my_generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut s) = self.state.write() {
            *s = Some(ModelState::Loading);
        }
        let slot = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(delay) = test_load_delay() {
                tracing::warn!("{TEST_LOAD_DELAY_ENV}: delaying the model load by {delay:?}");
                std::thread::sleep(delay);
            }
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
            slot.loaded.notify_waiters();
            done(outcome);
        });
    }

    /// Marks the model failed without loading (no model configured); wakes waiting requests.
    pub fn fail(&self, message: String) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut s) = self.state.write() {
            *s = Some(ModelState::Failed(message));
        }
        self.loaded.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_the_load_ends() {
        let slot = ModelSlot::default();
        let waiter = {
            let slot = slot.clone();
            tokio::spawn(async move { slot.wait_until_loaded().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        slot.fail("no model".into());
        let state = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        assert!(matches!(state, ModelState::Failed(m) if m == "no model"));
        // Already loaded (here: failed): returns at once.
        assert!(matches!(
            slot.wait_until_loaded().await,
            ModelState::Failed(_)
        ));
    }
}
