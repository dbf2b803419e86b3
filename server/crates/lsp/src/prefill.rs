//! Work ahead of the keystroke: when a document opens, or the user pauses after an edit, the
//! prompt that a request at that place would have is computed into the model's KV cache in the
//! background, through the request's own stages (snapshot → context → pipeline) with a backend
//! that only fills the cache. The next request there then computes only its few new tokens.
//!
//! Must not: delay a request. Every request cancels the background job (the scheduler's
//! background token) and the model stops it at its next step of
//! [`moat_model::BACKGROUND_CHUNK`] tokens. Nothing it computes is shown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_model::{
    Backend, CancelToken, FinishReason, GenerateRequest, Generation, ModelError, ModelTokenizer,
};
use tower_lsp_server::ls_types::Uri;

use crate::handlers::document::store_tree;
use crate::handlers::suggest::{Snapshot, gather_context, run_model};
use crate::model_slot::ModelState;
use crate::server::MoatServer;

/// How long the user pauses after an edit before the place of the edit is prefilled (a client
/// that asks on every keystroke has asked by then, and its request cancels this).
pub(crate) const PAUSE: Duration = Duration::from_millis(150);

/// After `didOpen`. LSP does not say where the cursor is: the end of the document, where a file
/// grows, is prefilled.
pub(crate) fn after_open(server: &MoatServer, uri: &Uri) {
    schedule(server, uri, usize::MAX, Duration::ZERO);
}

/// After `didChange`: the end of the last edit, once the user pauses.
pub(crate) fn after_change(server: &MoatServer, uri: &Uri) {
    let at = server
        .docs
        .get(uri.as_str())
        .and_then(|s| s.pending_edits.last().map(|(_, e)| e.new_end_byte));
    if let Some(at) = at {
        schedule(server, uri, at, PAUSE);
    }
}

/// After a request answered with a short prompt (its full prompt was over the cold-prompt
/// budget): the full prompt at its cursor, at once.
pub(crate) fn after_short_prompt(server: &MoatServer, uri: &Uri, cursor: usize) {
    schedule(server, uri, cursor, Duration::ZERO);
}

/// `MOAT_PREFILL=0` turns the background prefill off (to measure what it saves).
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("MOAT_PREFILL").map_or(true, |v| v != "0"))
}

fn schedule(server: &MoatServer, uri: &Uri, at: usize, delay: Duration) {
    if !enabled() {
        return;
    }
    let config = server.config();
    let key = uri.to_string();
    match server.docs.get(&key) {
        Some(state) if config.serves_language(state.doc.language_id()) => {}
        _ => return,
    }
    if matches!(server.model.state(), ModelState::Failed(_)) {
        return;
    }
    let cancel = server.scheduler.background();
    let context = gather_context(server, uri, &config);
    let mut settings = config.completion_settings();
    // The prompt's repository context opens with the workspace's name (repository format).
    settings.repo_name = server.workspace.index().and_then(|i| i.name());
    // The full prompt is what this work is for.
    settings.cold_prompt_budget = None;
    let (docs, model) = (server.docs.clone(), server.model.clone());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let ModelState::Ready(backend) = model.wait_until_loaded().await else {
            return;
        };
        if cancel.is_cancelled() {
            return;
        }
        let Some(now) = docs.get(&key).map(|state| Snapshot::of(&state, at)) else {
            return;
        };
        let revision = now.revision();
        let started = Instant::now();
        let warm: Arc<dyn Backend> = Arc::new(PrefillOnly(backend));
        match run_model(now, context, &settings, warm, cancel).await {
            Ok(result) => {
                if let Ok(r) = &result.completion {
                    tracing::debug!(
                        prompt = r.prompt_tokens,
                        reused = r.reused_tokens,
                        ms = started.elapsed().as_millis() as u64,
                        "background prefill"
                    );
                }
                if let Some(mut state) = docs.get_mut(&key) {
                    store_tree(&mut state, revision, result.tree);
                }
            }
            Err(_) => tracing::debug!("background prefill failed"),
        }
    });
}

/// The model, except that generating only fills its KV cache with the prompt (in small,
/// cancellable steps) and generates nothing.
struct PrefillOnly(Arc<dyn Backend>);

impl Backend for PrefillOnly {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn tokenizer(&self) -> &ModelTokenizer {
        self.0.tokenizer()
    }

    fn context_length(&self) -> usize {
        self.0.context_length()
    }

    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError> {
        let started = Instant::now();
        let computed = self.0.prefill(&req.prompt, cancel)?;
        Ok(Generation {
            tokens: Vec::new(),
            bytes: Vec::new(),
            finish: FinishReason::MaxTokens,
            reused_tokens: req.prompt.len().saturating_sub(computed),
            computed_tokens: computed,
            time_to_first_token: started.elapsed(),
            total_time: started.elapsed(),
        })
    }

    fn prefill(&self, prompt: &[u32], cancel: &CancelToken) -> Result<usize, ModelError> {
        self.0.prefill(prompt, cancel)
    }
}
