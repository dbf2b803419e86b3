//! The shared core of `textDocument/inlineCompletion` and `textDocument/completion`:
//! snapshot → type-through → debounce (superseded requests answer -32800) → pipeline on a
//! blocking thread → remember what was shown.

use std::time::Duration;

use moat_complete::{CompletionInput, ShownSuggestion, complete};
use moat_model::ModelError;
use moat_text::Position;
use tower_lsp_server::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp_server::ls_types::Uri;

use crate::handlers::document::{PARSE_INLINE_MAX_BYTES, refresh_tree, store_tree};
use crate::model_slot::ModelState;
use crate::workspace::{RETRIEVAL_DEADLINE, retrieve};

/// Open documents larger than this are not offered to retrieval.
const OPEN_FILE_CONTEXT_MAX_BYTES: usize = 256 * 1024;
use crate::server::MoatServer;

pub(crate) struct Suggestion {
    pub text: String,
    /// The cursor, in the client's encoding.
    pub position: Position,
    /// Start of the identifier before the cursor (for completion items' filtering).
    pub word_start: Position,
    pub word: String,
}

fn word_before(text: &str, cursor: usize) -> usize {
    let before = &text[..cursor];
    before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(cursor, |(i, _)| i)
}

fn make(
    server: &MoatServer,
    key: &str,
    text: &str,
    cursor: usize,
    suggestion: String,
) -> Option<Suggestion> {
    let state = server.docs.get(key)?;
    let enc = server.encoding();
    let start = word_before(text, cursor);
    Some(Suggestion {
        position: state.doc.position(cursor, enc),
        word_start: state.doc.position(start, enc),
        word: text[start..cursor].to_string(),
        text: suggestion,
    })
}

pub(crate) async fn suggest(
    server: &MoatServer,
    uri: &Uri,
    position: Position,
) -> RpcResult<Option<Suggestion>> {
    let key = uri.to_string();
    // Let notifications that arrived before this request (didChange) run first.
    tokio::task::yield_now().await;
    let config = server.config();
    let enc = server.encoding();
    {
        let Some(state) = server.docs.get(&key) else {
            return Err(RpcError::invalid_params(format!(
                "document not open: {key}"
            )));
        };
        if !config.serves_language(state.doc.language_id()) {
            return Ok(None);
        }
        if state.doc.len_lines() < position.line as usize {
            return Err(RpcError::invalid_params(format!(
                "position {position} is past the end of the document ({} lines)",
                state.doc.len_lines()
            )));
        }
    }
    let backend = match server.model.state() {
        ModelState::Ready(backend) => backend,
        ModelState::Loading => return Ok(None),
        ModelState::Failed(message) => {
            tracing::debug!("no suggestion: {message}");
            return Ok(None);
        }
    };

    // Typing through the shown suggestion: answer at once, no model.
    {
        let Some(state) = server.docs.get(&key) else {
            return Ok(None);
        };
        let cursor = state
            .doc
            .offset(position, enc)
            .map_err(|e| RpcError::invalid_params(e.to_string()))?;
        if let Some(shown) = &state.shown {
            let text = state.doc.text();
            if let Some(rest) = shown.advance(&text, cursor) {
                let rest = rest.to_string();
                drop(state);
                return Ok(make(server, &key, &text, cursor, rest));
            }
        }
    }

    let job = server.scheduler.begin(&key);
    if !job
        .debounce(Duration::from_millis(config.debounce_ms))
        .await
    {
        return Err(RpcError::request_cancelled());
    }

    let (text, cursor, language, tree, fresh, revision) = {
        let Some(state) = server.docs.get(&key) else {
            return Ok(None);
        };
        let Ok(cursor) = state.doc.offset(position, enc) else {
            return Ok(None);
        };
        (
            state.doc.text(),
            cursor,
            state.language,
            state.tree.clone(),
            state.tree_fresh,
            state.revision,
        )
    };
    let settings = config.completion_settings();
    let cancel = job.cancel.clone();
    let rel_path = server.relative_path(uri);
    let index = if config.repo_context {
        server.workspace.index()
    } else {
        None
    };
    let open_files: Vec<(String, String)> = if index.is_some() {
        server
            .docs
            .iter()
            .filter(|d| d.key() != &key && d.doc.len_bytes() <= OPEN_FILE_CONTEXT_MAX_BYTES)
            .take(8)
            .filter_map(|d| {
                let uri = d.key().parse::<Uri>().ok()?;
                Some((server.relative_path(&uri), d.doc.text()))
            })
            .collect()
    } else {
        Vec::new()
    };
    let budget = config.repo_context_bytes;
    let worker = tokio::task::spawn_blocking(move || {
        let tree = if fresh || (tree.is_none() && text.len() > PARSE_INLINE_MAX_BYTES) {
            tree
        } else {
            refresh_tree(language, tree, &text)
        };
        let snippets = match &index {
            Some(index) => retrieve(
                index,
                &rel_path,
                &text,
                cursor,
                &open_files,
                budget,
                Some(RETRIEVAL_DEADLINE),
            ),
            None => Vec::new(),
        };
        let input = CompletionInput {
            path: Some(&rel_path),
            text: &text,
            cursor,
            language,
            tree: tree.as_ref(),
            snippets: &snippets,
        };
        let result = complete(&input, &settings, backend.as_ref(), &cancel);
        (result, tree, text)
    });
    let (result, tree, text) = worker.await.map_err(|e| {
        tracing::error!("completion worker failed: {e}");
        RpcError::internal_error()
    })?;

    if let Some(mut state) = server.docs.get_mut(&key) {
        store_tree(&mut state, revision, tree);
    }
    match result {
        Ok(r) => {
            tracing::debug!(
                prompt = r.prompt_tokens,
                reused = r.reused_tokens,
                generated = r.generated_tokens,
                ms = r.elapsed.as_millis() as u64,
                skipped = r.skipped,
                "completion"
            );
            if r.text.is_empty() {
                return Ok(None);
            }
            if let Some(mut state) = server.docs.get_mut(&key)
                && state.revision == revision
            {
                state.shown = Some(ShownSuggestion::new(&text, cursor, &r.text));
            }
            Ok(make(server, &key, &text, cursor, r.text))
        }
        Err(ModelError::Cancelled) => Err(RpcError::request_cancelled()),
        Err(e) => {
            tracing::warn!("completion failed: {e}");
            Ok(None)
        }
    }
}
