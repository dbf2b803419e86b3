//! `didOpen` / `didChange`: O(edit) work only. The document is edited in place and the syntax
//! tree told about the edit; the reparse waits until a request needs the tree.

use moat_syntax::{Language, SyntaxTree, TextEdit};
use moat_text::{Document, Edit, Position, Range};
use tower_lsp_server::ls_types::{DidChangeTextDocumentParams, DidOpenTextDocumentParams};

use crate::server::{DocState, MoatServer};

fn language_of(language_id: &str, uri: &str) -> Option<Language> {
    Language::from_lsp_id(language_id).or_else(|| {
        let path = uri.rsplit('/').next().unwrap_or(uri);
        Language::from_path(std::path::Path::new(path))
    })
}

pub(crate) fn did_open(server: &MoatServer, params: DidOpenTextDocumentParams) {
    let item = params.text_document;
    let key = item.uri.to_string();
    let language = language_of(&item.language_id, &key);
    let doc = Document::new(&item.text, item.version, item.language_id);
    server.docs.insert(
        key.clone(),
        DocState {
            doc,
            language,
            tree: None,
            tree_fresh: false,
            pending_edits: Vec::new(),
            revision: 0,
            shown: None,
        },
    );
    // The first parse runs in the background: a big file can take seconds, and neither typing
    // nor the first requests wait for it (they go without syntax until it lands).
    if let Some(language) = language {
        let docs = server.docs.clone();
        let text = item.text;
        tokio::task::spawn_blocking(move || {
            let tree = SyntaxTree::parse(language, &text);
            if let Some(mut state) = docs.get_mut(&key)
                && state.tree.is_none()
            {
                store_tree(&mut state, 0, tree);
            }
        });
    }
}

/// Files above this size are not parsed on the request path when they have no tree yet.
pub(crate) const PARSE_INLINE_MAX_BYTES: usize = 256 * 1024;

fn to_text_edit(e: &Edit) -> TextEdit {
    TextEdit {
        start_byte: e.start_byte,
        old_end_byte: e.old_end_byte,
        new_end_byte: e.new_end_byte,
        start_point: (e.start_point.row, e.start_point.column),
        old_end_point: (e.old_end_point.row, e.old_end_point.column),
        new_end_point: (e.new_end_point.row, e.new_end_point.column),
    }
}

/// Beyond this many unparsed edits a late tree is dropped rather than caught up.
const MAX_PENDING_EDITS: usize = 4096;

/// Stores a tree parsed from the snapshot at `revision`: edits made since are applied to it so
/// it stays usable (incremental reparse later), unless there were too many or a full replace.
pub(crate) fn store_tree(state: &mut DocState, revision: u64, mut tree: Option<SyntaxTree>) {
    if state.revision == revision {
        state.tree = tree;
        state.tree_fresh = true;
        state.pending_edits.clear();
        return;
    }
    let Some(first) = state.pending_edits.first() else {
        return;
    };
    // The log must cover every change after `revision` (a full replace or an overflow clears it).
    if first.0 > revision + 1 || state.pending_edits.len() >= MAX_PENDING_EDITS {
        return;
    }
    if let Some(t) = tree.as_mut() {
        for (_, edit) in state.pending_edits.iter().filter(|(r, _)| *r > revision) {
            t.edit(edit);
        }
    }
    state.pending_edits.retain(|(r, _)| *r > revision);
    state.tree = tree;
    state.tree_fresh = false;
}

pub(crate) fn did_change(
    server: &MoatServer,
    params: DidChangeTextDocumentParams,
) -> Result<(), String> {
    let key = params.text_document.uri.to_string();
    let encoding = server.encoding();
    let Some(mut state) = server.docs.get_mut(&key) else {
        return Err(format!("didChange for a document that is not open: {key}"));
    };
    let mut errors = Vec::new();
    for change in params.content_changes {
        let range = change.range.map(|r| Range {
            start: Position {
                line: r.start.line,
                character: r.start.character,
            },
            end: Position {
                line: r.end.line,
                character: r.end.character,
            },
        });
        match state.doc.apply_change(range, &change.text, encoding) {
            Ok(edit) => {
                state.revision += 1;
                let revision = state.revision;
                if range.is_none() {
                    state.tree = None;
                    state.pending_edits.clear();
                } else {
                    let edit = to_text_edit(&edit);
                    if let Some(tree) = state.tree.as_mut() {
                        tree.edit(&edit);
                    }
                    if state.pending_edits.len() < MAX_PENDING_EDITS {
                        state.pending_edits.push((revision, edit));
                    }
                }
                state.tree_fresh = false;
            }
            Err(e) => errors.push(format!("ignored a change to {key}: {e}")),
        }
    }
    state.doc.set_version(params.text_document.version);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Parses or reparses `text` (on a worker thread).
pub(crate) fn refresh_tree(
    language: Option<Language>,
    tree: Option<SyntaxTree>,
    text: &str,
) -> Option<SyntaxTree> {
    match tree {
        Some(mut tree) => {
            if tree.reparse(text) {
                Some(tree)
            } else {
                None
            }
        }
        None => SyntaxTree::parse(language?, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_text::PositionEncoding;

    fn state(text: &str) -> DocState {
        DocState {
            doc: Document::new(text, 0, "python"),
            language: Some(Language::Python),
            tree: None,
            tree_fresh: false,
            shown: None,
            pending_edits: Vec::new(),
            revision: 0,
        }
    }

    fn type_at(state: &mut DocState, line: u32, character: u32, text: &str) {
        let at = Position { line, character };
        let edit = state
            .doc
            .apply_change(
                Some(Range { start: at, end: at }),
                text,
                PositionEncoding::Utf8,
            )
            .unwrap();
        state.revision += 1;
        let edit = to_text_edit(&edit);
        if let Some(tree) = state.tree.as_mut() {
            tree.edit(&edit);
        }
        state.pending_edits.push((state.revision, edit));
        state.tree_fresh = false;
    }

    #[test]
    fn a_tree_parsed_from_an_old_snapshot_is_caught_up() {
        let mut s = state("def f():\n    pass\n");
        let snapshot = s.doc.text();
        let late = refresh_tree(s.language, None, &snapshot);
        type_at(&mut s, 1, 8, "\n    return 1");
        type_at(&mut s, 0, 6, "x");
        store_tree(&mut s, 0, late);
        assert!(!s.tree_fresh);
        assert_eq!(
            s.pending_edits.len(),
            2,
            "edits since the tree's parse stay logged"
        );
        let text = s.doc.text();
        let caught_up = refresh_tree(s.language, s.tree.take(), &text).unwrap();
        let fresh = SyntaxTree::parse(Language::Python, &text).unwrap();
        assert_eq!(caught_up.to_sexp(), fresh.to_sexp());
    }

    #[test]
    fn a_current_tree_is_stored_fresh() {
        let mut s = state("x = 1\n");
        type_at(&mut s, 0, 5, "0");
        let text = s.doc.text();
        let tree = refresh_tree(s.language, None, &text);
        store_tree(&mut s, 1, tree);
        assert!(s.tree_fresh && s.tree.is_some() && s.pending_edits.is_empty());
    }
}
