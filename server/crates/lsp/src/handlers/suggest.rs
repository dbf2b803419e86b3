//! The shared core of `textDocument/inlineCompletion` and `textDocument/completion`, as named
//! stages: [`validate`] (the request's document, taken before anything else runs) → type-through
//! → [`wait_for_model`] while it loads → debounce (superseded requests answer -32800) →
//! [`snapshot`] (the cursor *as it is now*) → [`gather_context`] → [`run_model`] on a blocking
//! thread → [`place`] the answer on the document as it is then, and remember what was shown.
//!
//! Typing between the request and the answer: text typed at the requested position (on its line)
//! becomes part of the answer (`Suggestion::typed`), so clients that apply the answer to the
//! document as it was when they asked (Helix restores it) and clients that apply it to the
//! document as it is (Neovim, VS Code) both end up with the typed text plus the suggestion. An
//! answer that the typing since contradicts is computed again (at most [`MAX_RUNS`] times), and
//! one that cannot be placed (an edit elsewhere, a new line, a cursor somewhere unknown) is dropped.

use std::sync::Arc;
use std::time::Duration;

use moat_complete::{
    CompletionInput, CompletionResult, CompletionSettings, ShownSuggestion, Snippet, complete,
};
use moat_context::OpenDocument;
use moat_index::Index;
use moat_model::{Backend, CancelToken, ModelError};
use moat_syntax::{Language, SyntaxTree};
use moat_text::{Document, Position, PositionEncoding};
use tower_lsp_server::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp_server::ls_types::Uri;

use crate::config::Config;
use crate::handlers::document::{PARSE_INLINE_MAX_BYTES, refresh_tree, store_tree};
use crate::model_slot::ModelState;
use crate::scheduler::Job;
use crate::server::{DocState, MoatServer};

/// How many times the model runs for one request whose answer the user's typing keeps
/// contradicting before it gives up (the client asks again on a later keystroke).
const MAX_RUNS: usize = 3;

/// Characters an editor may insert after the cursor as a pair (auto-pairs): typed text ending in
/// one of these leaves the cursor at an unknown place inside it.
const CLOSERS: &[char] = &[')', ']', '}', '"', '\'', '`'];

pub(crate) struct Suggestion {
    /// The position the request asked for (unchanged by typing since: that went after it).
    pub requested: Position,
    /// Start of the identifier before `requested`, and that identifier.
    pub word_start: Position,
    pub word: String,
    /// Typed at `requested` since the request (one line; usually empty).
    pub typed: String,
    /// The cursor now: `requested` + `typed`.
    pub cursor: Position,
    /// The suggestion, to insert at `cursor`.
    pub text: String,
    /// The indentation of the cursor's line as a client that expands snippets sees it once the
    /// word before the cursor is removed (it re-indents a snippet's later lines by it).
    pub indent: String,
    /// The prompt's size in tokens and the repository snippets in it (`None` when typed through:
    /// no model ran); for the feedback records.
    pub prompt_tokens: Option<usize>,
    pub snippets: Option<usize>,
}

/// The document as the request saw it: its position is valid for this version only.
struct Origin {
    doc: Document,
    revision: u64,
    cursor: usize,
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

/// What was typed at the request's cursor since the request, if the document now is the request's
/// document plus that one insertion on the cursor's line; `None` when it is anything else.
fn typed_since(origin: &Origin, revision: u64, now: &Document) -> Option<String> {
    if revision == origin.revision {
        return Some(String::new());
    }
    let (old, new) = (origin.doc.rope(), now.rope());
    let added = new.len_bytes().checked_sub(old.len_bytes())?;
    let at = origin.cursor;
    let end = at + added;
    if !now.is_char_boundary(at) || !now.is_char_boundary(end) {
        return None;
    }
    if old.byte_slice(..at) != new.byte_slice(..at) || old.byte_slice(at..) != new.byte_slice(end..)
    {
        return None;
    }
    let typed = now.slice(at..end);
    (!typed.contains(['\n', '\r'])).then_some(typed)
}

fn leading_whitespace(s: &str) -> &str {
    &s[..s.len() - s.trim_start_matches([' ', '\t']).len()]
}

fn make(
    now: &Document,
    enc: PositionEncoding,
    origin: &Origin,
    typed: String,
    text: &str,
) -> Suggestion {
    let doc = &origin.doc;
    let cursor = origin.cursor;
    let line = doc.line_of(cursor);
    let line_start = doc.line_start(line);
    let line_end = doc.line_content(line).end.max(cursor);
    let before = doc.slice(line_start..cursor);
    let word_start = line_start + word_before(&before, before.len());
    let head = doc.slice(line_start..word_start);
    let indent = if head.trim_start_matches([' ', '\t']).is_empty() {
        format!("{head}{}", leading_whitespace(&doc.slice(cursor..line_end)))
    } else {
        leading_whitespace(&head).to_string()
    };
    Suggestion {
        requested: doc.position(cursor, enc),
        word_start: doc.position(word_start, enc),
        word: doc.slice(word_start..cursor),
        cursor: now.position(cursor + typed.len(), enc),
        typed,
        text: text.to_string(),
        indent,
        prompt_tokens: None,
        snippets: None,
    }
}

pub(crate) async fn suggest(
    server: &MoatServer,
    uri: &Uri,
    position: Position,
) -> RpcResult<Option<Suggestion>> {
    let key = uri.to_string();
    let config = server.config();
    let enc = server.encoding();
    // No `.await` before `validate`: notifications sent after the request (the next keystrokes'
    // didChange) have not run yet, so this is the document the position refers to.
    let Some((origin, through)) = validate(server, &key, position, &config)? else {
        return Ok(None);
    };
    // This request replaces the document's older one (which answers -32800), whatever it waits on.
    let job = server.scheduler.begin(&key);
    if let Some(rest) = through {
        return Ok(Some(make(&origin.doc, enc, &origin, String::new(), &rest)));
    }
    let Some(backend) = wait_for_model(server, &job, &config).await? else {
        return Ok(None);
    };
    let debounce = Duration::from_millis(config.debounce_ms);
    let mut settings = config.completion_settings();
    // The prompt's repository context opens with the workspace's name (repository format).
    settings.repo_name = server.workspace.index().and_then(|i| i.name());
    for run in 0..MAX_RUNS {
        if !job.debounce(debounce).await {
            return Err(RpcError::request_cancelled());
        }
        if run > 0 {
            tracing::debug!(run, "typing contradicted the answer: computing it again");
        }
        let Some(now) = snapshot(server, &key, &origin) else {
            return Ok(None);
        };
        let context = gather_context(server, uri, &config);
        let cancel = job.cancel.clone();
        let cursor = now.cursor;
        let result = run_model(now.clone(), context, &settings, backend.clone(), cancel).await?;
        if let Some(mut state) = server.docs.get_mut(&key) {
            store_tree(&mut state, now.revision, result.tree);
        }
        let (suggestion, prompt_tokens) = match result.completion {
            Ok(r) => {
                if r.short_prompt {
                    // The full prompt cost more than the cold-prompt budget: compute it now,
                    // for the next request here.
                    crate::prefill::after_short_prompt(server, uri, cursor);
                }
                tracing::debug!(
                    prompt = r.prompt_tokens,
                    reused = r.reused_tokens,
                    generated = r.generated_tokens,
                    ms = r.elapsed.as_millis() as u64,
                    skipped = r.skipped,
                    short = r.short_prompt,
                    "completion"
                );
                (r.text, r.prompt_tokens)
            }
            Err(ModelError::Cancelled) => return Err(RpcError::request_cancelled()),
            Err(e) => {
                tracing::warn!("completion failed: {e}");
                return Ok(None);
            }
        };
        match place(server, &key, enc, &origin, &now, &suggestion) {
            Placed::Shown(mut s) => {
                (s.prompt_tokens, s.snippets) = (Some(prompt_tokens), Some(result.snippets));
                return Ok(Some(s));
            }
            Placed::Nothing => return Ok(None),
            Placed::Contradicted => continue,
        }
    }
    Ok(None)
}

/// Checks the request against the document as it is when the request arrives and takes that
/// document (the origin); also the rest of the shown suggestion when the user typed through it.
/// `None` when the document's language is not served.
fn validate(
    server: &MoatServer,
    key: &str,
    position: Position,
    config: &Config,
) -> RpcResult<Option<(Origin, Option<String>)>> {
    let Some(state) = server.docs.get(key) else {
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
    let cursor = state
        .doc
        .offset(position, server.encoding())
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    // Typing through the shown suggestion: answered at once, no model.
    let through = state.shown.as_ref().and_then(|shown| {
        let text = state.doc.text();
        shown.advance(&text, cursor).map(str::to_string)
    });
    let origin = Origin {
        doc: state.doc.clone(),
        revision: state.revision,
        cursor,
    };
    Ok(Some((origin, through)))
}

/// The model, waiting while it loads (up to `loadWaitMs`) unless a newer request replaces this
/// one first. `None`: no model to ask (failed, or not loaded in time).
async fn wait_for_model(
    server: &MoatServer,
    job: &Job,
    config: &Config,
) -> RpcResult<Option<Arc<dyn Backend>>> {
    match server.model.state() {
        ModelState::Ready(backend) => Ok(Some(backend)),
        ModelState::Failed(message) => {
            tracing::debug!("no suggestion: {message}");
            Ok(None)
        }
        ModelState::Loading if config.load_wait_ms == 0 => Ok(None),
        ModelState::Loading => {
            let limit = Duration::from_millis(config.load_wait_ms);
            tokio::select! {
                state = server.model.wait_until_loaded() => match state {
                    ModelState::Ready(backend) => Ok(Some(backend)),
                    _ => Ok(None),
                },
                _ = job.cancelled() => Err(RpcError::request_cancelled()),
                _ = tokio::time::sleep(limit) => {
                    tracing::debug!("the model did not load within {limit:?}: empty answer");
                    Ok(None)
                }
            }
        }
    }
}

/// The document as the model will see it: the origin plus what was typed at its cursor since.
#[derive(Clone)]
pub(crate) struct Snapshot {
    text: String,
    cursor: usize,
    typed: String,
    language: Option<Language>,
    tree: Option<SyntaxTree>,
    tree_fresh: bool,
    revision: u64,
}

impl Snapshot {
    /// The document as it is, with the cursor at `cursor` (clamped to the text).
    pub fn of(state: &DocState, cursor: usize) -> Self {
        let text = state.doc.text();
        Snapshot {
            cursor: text.floor_char_boundary(cursor.min(text.len())),
            text,
            typed: String::new(),
            language: state.language,
            tree: state.tree.clone(),
            tree_fresh: state.tree_fresh,
            revision: state.revision,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }
}

/// `None` when the document changed in a way the answer could not be placed in, or when the
/// typed text ends in a closer an editor may have auto-paired (the cursor is somewhere unknown).
fn snapshot(server: &MoatServer, key: &str, origin: &Origin) -> Option<Snapshot> {
    let state = server.docs.get(key)?;
    let typed = typed_since(origin, state.revision, &state.doc)?;
    if typed.ends_with(CLOSERS) {
        return None;
    }
    Some(Snapshot {
        cursor: origin.cursor + typed.len(),
        typed,
        ..Snapshot::of(&state, 0)
    })
}

/// Where the prompt's repository context comes from: the index and the open documents, handed
/// to [`moat_context::gather`] on the worker thread.
pub(crate) struct ContextSources {
    index: Option<Arc<Index>>,
    path: String,
    open_documents: Vec<OpenDocument>,
    budget_bytes: usize,
}

impl ContextSources {
    /// The snippets for the cursor (blocking: the index may read from disk).
    fn snippets(&self, text: &str, cursor: usize) -> Vec<Snippet> {
        let Some(index) = &self.index else {
            return Vec::new();
        };
        moat_context::gather(
            index,
            &moat_context::Request {
                path: &self.path,
                text,
                cursor,
                open_documents: &self.open_documents,
                budget_bytes: self.budget_bytes,
                deadline: Some(moat_context::RETRIEVAL_DEADLINE),
            },
        )
    }
}

/// The context sources for a request on `uri` (no index, no documents when repository context
/// is off). Cheap: open documents are ropes, cloned without copying their text.
pub(crate) fn gather_context(server: &MoatServer, uri: &Uri, config: &Config) -> ContextSources {
    let path = server.relative_path(uri);
    let index = if config.repo_context {
        server.workspace.index()
    } else {
        None
    };
    let open_documents = if index.is_some() {
        server
            .docs
            .iter()
            .filter(|d| d.key() != uri.as_str())
            .filter_map(|d| {
                let uri = d.key().parse::<Uri>().ok()?;
                Some(OpenDocument {
                    path: server.relative_path(&uri),
                    doc: d.doc.clone(),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    ContextSources {
        index,
        path,
        open_documents,
        budget_bytes: config.repo_context_bytes,
    }
}

pub(crate) struct RunResult {
    pub completion: Result<CompletionResult, ModelError>,
    /// The syntax tree of the snapshot's text (refreshed if it was stale), to store back.
    pub tree: Option<SyntaxTree>,
    /// Repository snippets in the prompt.
    snippets: usize,
}

/// On a blocking thread: the syntax tree, the repository snippets, the pipeline (the background
/// prefill runs it too, with a backend that only fills the KV cache).
pub(crate) async fn run_model(
    now: Snapshot,
    context: ContextSources,
    settings: &CompletionSettings,
    backend: Arc<dyn Backend>,
    cancel: CancelToken,
) -> RpcResult<RunResult> {
    let settings = settings.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let Snapshot {
            text,
            cursor,
            language,
            tree,
            tree_fresh,
            ..
        } = now;
        let tree = if tree_fresh || (tree.is_none() && text.len() > PARSE_INLINE_MAX_BYTES) {
            tree
        } else {
            refresh_tree(language, tree, &text)
        };
        let snippets = context.snippets(&text, cursor);
        let input = CompletionInput {
            path: Some(&context.path),
            text: &text,
            cursor,
            language,
            tree: tree.as_ref(),
            snippets: &snippets,
        };
        let completion = complete(&input, &settings, backend.as_ref(), &cancel);
        RunResult {
            completion,
            tree,
            snippets: snippets.len(),
        }
    });
    worker.await.map_err(|e| {
        tracing::error!("completion worker failed: {e}");
        RpcError::internal_error()
    })
}

enum Placed {
    Shown(Suggestion),
    /// Nothing to show (empty, already typed, or the document moved on unplaceably).
    Nothing,
    /// Typing since the snapshot contradicts the answer: compute it again.
    Contradicted,
}

/// Places the answer on the document as it is now (the model may have run while the user typed)
/// and remembers it as shown.
fn place(
    server: &MoatServer,
    key: &str,
    enc: PositionEncoding,
    origin: &Origin,
    snapshot: &Snapshot,
    suggestion: &str,
) -> Placed {
    if suggestion.is_empty() {
        return Placed::Nothing;
    }
    let Some(mut state) = server.docs.get_mut(key) else {
        return Placed::Nothing;
    };
    let Some(typed_now) = typed_since(origin, state.revision, &state.doc) else {
        return Placed::Nothing;
    };
    let Some(rest) = typed_now
        .strip_prefix(snapshot.typed.as_str())
        .and_then(|more| suggestion.strip_prefix(more))
    else {
        return Placed::Contradicted;
    };
    if rest.is_empty() {
        return Placed::Nothing;
    }
    state.shown = Some(ShownSuggestion::new(
        &snapshot.text,
        snapshot.cursor,
        suggestion,
    ));
    Placed::Shown(make(&state.doc, enc, origin, typed_now, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_text::Range;

    fn origin(text: &str, cursor: usize) -> Origin {
        Origin {
            doc: Document::new(text, 1, "python"),
            revision: 0,
            cursor,
        }
    }

    fn edited(text: &str, start: usize, end: usize, new: &str) -> Document {
        let mut doc = Document::new(text, 1, "python");
        let enc = PositionEncoding::Utf8;
        let range = Range {
            start: doc.position(start, enc),
            end: doc.position(end, enc),
        };
        doc.apply_change(Some(range), new, enc).unwrap();
        doc
    }

    #[test]
    fn typing_at_the_cursor_is_found() {
        let text = "def f():\n    x = \n    return x\n";
        let o = origin(text, 17);
        let now = Document::new(text, 1, "python");
        assert_eq!(typed_since(&o, 0, &now).as_deref(), Some(""));
        let now = edited(text, 17, 17, "fo");
        assert_eq!(typed_since(&o, 1, &now).as_deref(), Some("fo"));
        // Elsewhere, a deletion, a new line: the answer cannot be placed.
        assert_eq!(typed_since(&o, 1, &edited(text, 0, 0, "#")), None);
        assert_eq!(typed_since(&o, 1, &edited(text, 16, 17, "")), None);
        assert_eq!(typed_since(&o, 1, &edited(text, 17, 17, "a\n")), None);
        // Non-ASCII.
        let now = edited(text, 17, 17, "中é");
        assert_eq!(typed_since(&o, 1, &now).as_deref(), Some("中é"));
    }

    #[test]
    fn the_suggestion_knows_its_word_and_indentation() {
        let text = "if x:\n    retu\n";
        let o = origin(text, 14);
        let now = edited(text, 14, 14, "rn");
        let s = make(&now, PositionEncoding::Utf16, &o, "rn".into(), " x");
        assert_eq!(s.word, "retu");
        assert_eq!(s.indent, "    ");
        assert_eq!((s.word_start.line, s.word_start.character), (1, 4));
        assert_eq!((s.requested.line, s.requested.character), (1, 8));
        assert_eq!((s.cursor.line, s.cursor.character), (1, 10));
        // A blank, indented line: the indentation up to the cursor.
        let o = origin("if x:\n        \n", 10);
        let s = make(&o.doc, PositionEncoding::Utf16, &o, String::new(), "y");
        assert_eq!((s.word.as_str(), s.indent.as_str()), ("", "        "));
    }
}
