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
    // Parsing a new document is deferred too: the first request parses it on a worker thread.
    server.docs.insert(
        key,
        DocState {
            doc,
            language,
            tree: None,
            tree_fresh: false,
            shown: None,
        },
    );
}

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
                if range.is_none() {
                    state.tree = None;
                } else if let Some(tree) = state.tree.as_mut() {
                    tree.edit(&to_text_edit(&edit));
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
