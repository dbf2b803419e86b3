//! The feedback hooks of the completion handlers (recorded by [`crate::feedback`]): a request is
//! observed as it arrives (how the document stands against the suggestion on show, before any
//! later change runs), its answer goes on show with the accept command attached to its item, and
//! `workspace/executeCommand` (the client ran that command: accepted), `didClose` and `shutdown`
//! decide what is on show. Nothing here waits on IO: records go to the writer thread.
//!
//! Which editors run an item's command on accept: VS Code (inline and menu items, through
//! vscode-languageclient's registration of the server's commands), Neovim 0.11's
//! `vim.lsp.completion` and moat's Neovim ghost text (`editors/neovim`); Helix (25.x) does not
//! (helix-editor/helix#15585), so there the next request, `didClose` or `shutdown` decides from
//! the text at the suggestion's place, as it does for partial accepts everywhere.

use std::time::{Duration, Instant};

use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp_server::ls_types::{Command, ExecuteCommandParams, Uri};

use crate::feedback::{ACCEPT_COMMAND, Method, Shown, Signal, Snapshot, source_text};
use crate::handlers::suggest::Suggestion;
use crate::model_slot::ModelState;
use crate::server::MoatServer;

/// How long `shutdown` waits for the records to reach the disk.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

/// A completion request as it arrived.
pub(crate) struct Observation {
    key: String,
    before: Option<Snapshot>,
    started: Instant,
    enabled: bool,
}

fn enabled(server: &MoatServer) -> bool {
    server.feedback.available() && server.config().feedback
}

/// Call first thing in a completion handler, before any `.await`.
pub(crate) fn observe(server: &MoatServer, uri: &Uri) -> Observation {
    let key = uri.to_string();
    let enabled = enabled(server);
    let before = if enabled {
        server
            .docs
            .get(&key)
            .and_then(|state| server.feedback.snapshot(&key, &state.doc))
    } else {
        server.feedback.clear();
        None
    };
    Observation {
        key,
        before,
        started: Instant::now(),
        enabled,
    }
}

fn model_name(server: &MoatServer) -> Option<String> {
    match server.model.state() {
        // `describe` is "<manifest name> (<backend details>)".
        ModelState::Ready(backend) => backend.describe().split(" (").next().map(str::to_string),
        _ => None,
    }
}

/// The request answered `answer` (`None`: nothing to show). Returns the command its item carries
/// so the client reports acceptance (`None` when feedback is off).
pub(crate) fn answered(
    server: &MoatServer,
    observation: Observation,
    uri: &Uri,
    method: Method,
    answer: Option<&Suggestion>,
) -> Option<Command> {
    if !observation.enabled {
        return None;
    }
    let key = &observation.key;
    let shown = answer.and_then(|s| {
        let state = server.docs.get(key)?;
        let cursor = state.doc.offset(s.cursor, server.encoding()).ok()?;
        let source = server
            .config()
            .feedback_source_text
            .then(|| source_text(server.relative_path(uri), &state.doc, cursor, &s.text));
        Some((
            cursor,
            Shown {
                method,
                language: state.doc.language_id().to_string(),
                model: model_name(server),
                latency: observation.started.elapsed(),
                prompt_tokens: s.prompt_tokens.map(|n| n as u64),
                snippets: s.snippets.map(|n| n as u64),
                origin: cursor,
                text: s.text.clone(),
                source,
            },
        ))
    });
    let (cursor, shown) = match shown {
        Some((cursor, shown)) => (cursor, Some(shown)),
        None => (0, None),
    };
    let id = server
        .feedback
        .answered(key, observation.before, cursor, shown)?;
    Some(Command {
        title: "moat: suggestion accepted".into(),
        command: ACCEPT_COMMAND.into(),
        arguments: Some(vec![Value::from(id)]),
    })
}

/// `workspace/executeCommand` for [`ACCEPT_COMMAND`]: the user accepted suggestion `arguments[0]`.
pub(crate) fn execute_command(
    server: &MoatServer,
    params: &ExecuteCommandParams,
) -> RpcResult<Option<Value>> {
    if params.command != ACCEPT_COMMAND {
        return Err(RpcError::invalid_params(format!(
            "unknown command: {}",
            params.command
        )));
    }
    let id = params
        .arguments
        .first()
        .and_then(|a| a.as_u64().or_else(|| a.get("id").and_then(Value::as_u64)));
    let Some(id) = id else {
        return Err(RpcError::invalid_params(format!(
            "{ACCEPT_COMMAND} takes a suggestion id, got {:?}",
            params.arguments
        )));
    };
    if !server.feedback.accepted(id) {
        tracing::debug!("{ACCEPT_COMMAND}: suggestion {id} was already decided");
    }
    Ok(None)
}

/// `didClose`: decide the document's suggestion on its last text (call before forgetting it).
pub(crate) fn closed(server: &MoatServer, key: &str) {
    let state = server.docs.get(key);
    server
        .feedback
        .finish_document(key, state.as_ref().map(|s| &s.doc), Signal::Close);
}

/// `shutdown`: decide every suggestion on show, then wait (briefly) for the file.
pub(crate) async fn shutdown(server: &MoatServer) {
    for key in server.feedback.pending_documents() {
        let state = server.docs.get(&key);
        server
            .feedback
            .finish_document(&key, state.as_ref().map(|s| &s.doc), Signal::Shutdown);
    }
    let tracker = server.feedback.clone();
    let _ = tokio::task::spawn_blocking(move || tracker.flush(SHUTDOWN_FLUSH)).await;
}
