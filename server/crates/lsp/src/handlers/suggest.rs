//! The shared core of `textDocument/inlineCompletion` and `textDocument/completion`:
//! the request's document (taken before anything else runs) → type-through → wait for the model
//! while it loads → debounce (superseded requests answer -32800) → pipeline on a blocking thread
//! at the cursor *as it is now* → checked against the document again → remember what was shown.
//!
//! Typing between the request and the answer: text typed at the requested position (on its line)
//! becomes part of the answer (`Suggestion::typed`), so clients that apply the answer to the
//! document as it was when they asked (Helix restores it) and clients that apply it to the
//! document as it is (Neovim, VS Code) both end up with the typed text plus the suggestion. An
//! answer that the typing since contradicts is computed again (at most [`MAX_RUNS`] times), and
//! one that cannot be placed (an edit elsewhere, a new line, a cursor somewhere unknown) is dropped.

use std::time::Duration;

use moat_complete::{CompletionInput, ShownSuggestion, complete};
use moat_model::ModelError;
use moat_text::{Document, Position, PositionEncoding};
use tower_lsp_server::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp_server::ls_types::Uri;

use crate::handlers::document::{PARSE_INLINE_MAX_BYTES, refresh_tree, store_tree};
use crate::model_slot::ModelState;
use crate::server::MoatServer;
use crate::workspace::{RETRIEVAL_DEADLINE, retrieve};

/// Open documents larger than this are not offered to retrieval.
const OPEN_FILE_CONTEXT_MAX_BYTES: usize = 256 * 1024;

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
    // No `.await` before this block: notifications sent after the request (the next keystrokes'
    // didChange) have not run yet, so this is the document the position refers to.
    let (origin, through) = {
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
        let cursor = state
            .doc
            .offset(position, enc)
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
        (origin, through)
    };
    // This request replaces the document's older one (which answers -32800), whatever it waits on.
    let job = server.scheduler.begin(&key);
    if let Some(rest) = through {
        return Ok(Some(make(&origin.doc, enc, &origin, String::new(), &rest)));
    }

    let backend = match server.model.state() {
        ModelState::Ready(backend) => backend,
        ModelState::Failed(message) => {
            tracing::debug!("no suggestion: {message}");
            return Ok(None);
        }
        ModelState::Loading if config.load_wait_ms == 0 => return Ok(None),
        ModelState::Loading => {
            // Answered once the model is ready, unless a newer request replaces this one first.
            let limit = Duration::from_millis(config.load_wait_ms);
            tokio::select! {
                state = server.model.wait_until_loaded() => match state {
                    ModelState::Ready(backend) => backend,
                    _ => return Ok(None),
                },
                _ = job.cancelled() => return Err(RpcError::request_cancelled()),
                _ = tokio::time::sleep(limit) => {
                    tracing::debug!("the model did not load within {limit:?}: empty answer");
                    return Ok(None);
                }
            }
        }
    };

    let debounce = Duration::from_millis(config.debounce_ms);
    let settings = config.completion_settings();
    let rel_path = server.relative_path(uri);
    let index = if config.repo_context {
        server.workspace.index()
    } else {
        None
    };
    for run in 0..MAX_RUNS {
        if !job.debounce(debounce).await {
            return Err(RpcError::request_cancelled());
        }
        if run > 0 {
            tracing::debug!(run, "typing contradicted the answer: computing it again");
        }
        let (text, cursor, typed, language, tree, fresh, revision) = {
            let Some(state) = server.docs.get(&key) else {
                return Ok(None);
            };
            let Some(typed) = typed_since(&origin, state.revision, &state.doc) else {
                return Ok(None);
            };
            if typed.ends_with(CLOSERS) {
                return Ok(None);
            }
            (
                state.doc.text(),
                origin.cursor + typed.len(),
                typed,
                state.language,
                state.tree.clone(),
                state.tree_fresh,
                state.revision,
            )
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
        let cancel = job.cancel.clone();
        let (index, rel_path, settings, backend) = (
            index.clone(),
            rel_path.clone(),
            settings.clone(),
            backend.clone(),
        );
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
        let suggestion = match result {
            Ok(r) => {
                tracing::debug!(
                    prompt = r.prompt_tokens,
                    reused = r.reused_tokens,
                    generated = r.generated_tokens,
                    ms = r.elapsed.as_millis() as u64,
                    skipped = r.skipped,
                    "completion"
                );
                r.text
            }
            Err(ModelError::Cancelled) => return Err(RpcError::request_cancelled()),
            Err(e) => {
                tracing::warn!("completion failed: {e}");
                return Ok(None);
            }
        };
        if suggestion.is_empty() {
            return Ok(None);
        }
        // The document may have moved on while the model ran.
        let Some(mut state) = server.docs.get_mut(&key) else {
            return Ok(None);
        };
        let Some(typed_now) = typed_since(&origin, state.revision, &state.doc) else {
            return Ok(None);
        };
        let Some(rest) = typed_now
            .strip_prefix(typed.as_str())
            .and_then(|more| suggestion.strip_prefix(more))
        else {
            continue;
        };
        if rest.is_empty() {
            return Ok(None);
        }
        state.shown = Some(ShownSuggestion::new(&text, cursor, &suggestion));
        return Ok(Some(make(&state.doc, enc, &origin, typed_now, rest)));
    }
    Ok(None)
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
