//! The model the server runs, loaded in the background. Nothing waits for loading but the
//! completion requests that arrive meanwhile: each waits (cancellable, bounded by `loadWaitMs`)
//! in [`ModelSlot::wait_until_loaded`] and is answered once the model is ready.
//!
//! Which model: the client's `modelPath`, else the workspace's own choice in `.moat.toml` at its
//! root (`model = "team-model"`, an installed model's name, or a folder relative to the
//! workspace; [`workspace_model`]), else the default. Saving a changed `.moat.toml` loads the
//! newly named model in the background without a restart ([`ModelSlot::path`] tells which one is
//! loaded, so an unchanged choice is not reloaded).
//!
//! Test-only knob: `MOAT_TEST_LOAD_DELAY_MS` (milliseconds) delays every load by that long, so the
//! tests can type while a model "loads" as a big one would. Never set it outside tests.

use std::path::{Path, PathBuf};
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
    /// The manifest of the latest load (in progress or done).
    path: Arc<RwLock<Option<PathBuf>>>,
}

/// The model a workspace names in `<root>/.moat.toml` (top-level `model = "..."`): `Ok(None)`
/// when there is no such file or key, `Err` (a message for the user) when the file cannot be read
/// or parsed or the model is not there. A bare name is an installed model
/// (`$MOAT_HOME/models/<name>`, see `moat model list`); a name with a `/` is a folder, relative to
/// the workspace root unless absolute.
pub fn workspace_model(root: &Path) -> Result<Option<PathBuf>, String> {
    #[derive(serde::Deserialize)]
    struct MoatToml {
        model: Option<String>,
    }
    let file = root.join(".moat.toml");
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let parsed: MoatToml =
        toml::from_str(&text).map_err(|e| format!("{}: {}", file.display(), e.message()))?;
    let Some(name) = parsed.model.filter(|n| !n.trim().is_empty()) else {
        return Ok(None);
    };
    let folder = if name.contains('/') || name.starts_with('.') {
        root.join(&name)
    } else {
        moat_model::models_dir()
            .ok_or("cannot tell where models live: set MOAT_HOME")?
            .join(&name)
    };
    if folder.join("model.toml").is_file() || folder.is_file() {
        Ok(Some(folder))
    } else {
        Err(format!(
            "{} names the model {name:?}, which is not installed ({} has no model.toml; see `moat model list`)",
            file.display(),
            folder.display()
        ))
    }
}

/// Whether `path` is a workspace's `.moat.toml` (a change to it may choose another model).
pub fn is_workspace_config(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == ".moat.toml")
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

    /// The manifest of the latest load (in progress or done), if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.path.read().ok().and_then(|p| p.clone())
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
        if let Ok(mut p) = self.path.write() {
            *p = Some(manifest.clone());
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
        if let Ok(mut p) = self.path.write() {
            *p = None;
        }
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

    #[test]
    fn workspace_model_from_moat_toml() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        assert_eq!(workspace_model(root), Ok(None));
        std::fs::write(
            root.join(".moat.toml"),
            "[index]\nexclude = [\"vendor/\"]\n",
        )
        .unwrap();
        assert_eq!(workspace_model(root), Ok(None));
        // A folder relative to the workspace.
        std::fs::create_dir_all(root.join("models/ours")).unwrap();
        std::fs::write(root.join("models/ours/model.toml"), "").unwrap();
        std::fs::write(root.join(".moat.toml"), "model = \"./models/ours\"\n").unwrap();
        assert_eq!(workspace_model(root), Ok(Some(root.join("./models/ours"))));
        // A name that is not installed, and a broken file: clear messages.
        std::fs::write(root.join(".moat.toml"), "model = \"no-such-model-here\"\n").unwrap();
        let err = workspace_model(root).unwrap_err();
        assert!(
            err.contains("no-such-model-here") && err.contains("not installed"),
            "{err}"
        );
        std::fs::write(root.join(".moat.toml"), "model = [").unwrap();
        assert!(workspace_model(root).is_err());
        assert!(is_workspace_config(&root.join(".moat.toml")));
        assert!(!is_workspace_config(&root.join("moat.toml")));
    }
}
