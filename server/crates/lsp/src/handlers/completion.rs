//! `textDocument/completion`: for clients without inline completion (Helix, Neovim's
//! `vim.lsp.completion`). One item whose label previews the suggestion and whose `textEdit`
//! replaces the word before the requested position with that word, what was typed since the
//! request, and the suggestion; `filterText` is the first line of that, so it always starts with
//! what the user has typed (a stale answer is never offered: see `suggest`).
//!
//! The range is the request's (LSP: it contains the position the completion was requested at):
//! Helix restores the document to the request's state before applying an item, Neovim and VS Code
//! replace from the range's start to the cursor, so both end with the same text.
//!
//! Plain text, except for Neovim: its built-in completion keeps a plain-text `textEdit` only up to
//! the first whitespace (0.11, `get_completion_word`), but expands a snippet whole. A snippet has
//! `$`, `}` and `\` escaped, and its later lines relative to the cursor line's indentation, which
//! snippet expansion adds back; a suggestion that dedents below it ends before that line.

use moat_text::Position;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionList, CompletionParams, CompletionResponse,
    CompletionTextEdit, Documentation, InsertTextFormat, InsertTextMode, MarkupContent, MarkupKind,
    Position as LspPosition, Range as LspRange, TextEdit,
};

use crate::feedback::Method;
use crate::handlers::feedback;
use crate::handlers::suggest::suggest;
use crate::server::MoatServer;

const LABEL_CHARS: usize = 60;

/// Whether items go out as snippets: for Neovim (which cuts plain-text items) when it says it
/// expands snippets. Helix would re-indent and enter a snippet session; plain text is exact there.
pub(crate) fn wants_snippets(client_name: Option<&str>, snippet_support: bool) -> bool {
    snippet_support && client_name.is_some_and(|name| name.eq_ignore_ascii_case("neovim"))
}

/// `text` (after the cursor) with its later lines relative to `indent`; stops before the first
/// line that is indented less (a blank line becomes empty).
fn relative_lines(text: &str, indent: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i == 0 {
            out.push_str(line);
            continue;
        }
        let relative = match line.strip_prefix(indent) {
            Some(rest) => rest,
            None if line.trim().is_empty() => "",
            None => break,
        };
        out.push('\n');
        out.push_str(relative);
    }
    out
}

/// LSP snippet syntax for literal text.
fn escape_snippet(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '\\' | '$' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn lsp_position(p: Position) -> LspPosition {
    LspPosition {
        line: p.line,
        character: p.character,
    }
}

pub(crate) async fn handle(
    server: &MoatServer,
    params: CompletionParams,
) -> RpcResult<Option<CompletionResponse>> {
    let tdp = params.text_document_position;
    let position = Position {
        line: tdp.position.line,
        character: tdp.position.character,
    };
    let uri = &tdp.text_document.uri;
    let observation = feedback::observe(server, uri);
    let answer = suggest(server, uri, position).await?;
    let command = feedback::answered(
        server,
        observation,
        uri,
        Method::Completion,
        answer.as_ref(),
    );
    let Some(s) = answer else {
        return Ok(Some(CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: Vec::new(),
        })));
    };
    let snippet = server
        .snippet_items
        .load(std::sync::atomic::Ordering::SeqCst);
    let text = if snippet {
        relative_lines(&s.text, &s.indent)
    } else {
        s.text.clone()
    };
    let new_text = format!("{}{}{}", s.word, s.typed, text);
    let first_line = new_text.lines().next().unwrap_or_default();
    let trimmed = first_line.trim();
    let mut label: String = trimmed.chars().take(LABEL_CHARS).collect();
    if trimmed.chars().count() > LABEL_CHARS || new_text.contains('\n') {
        label.push('…');
    }
    let range = LspRange {
        start: lsp_position(s.word_start),
        end: lsp_position(s.requested),
    };
    let preview = if snippet {
        format!("{}{}{}", s.word, s.typed, s.text)
    } else {
        new_text.clone()
    };
    let item = CompletionItem {
        label,
        kind: Some(CompletionItemKind::TEXT),
        detail: Some("moat".into()),
        documentation: Some(Documentation::MarkupContent(MarkupContent {
            kind: MarkupKind::Markdown,
            value: format!("```\n{preview}\n```"),
        })),
        filter_text: Some(first_line.to_string()),
        sort_text: Some("0".into()),
        preselect: Some(true),
        insert_text_format: Some(if snippet {
            InsertTextFormat::SNIPPET
        } else {
            InsertTextFormat::PLAIN_TEXT
        }),
        insert_text_mode: snippet.then_some(InsertTextMode::ADJUST_INDENTATION),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit {
            range,
            new_text: if snippet {
                escape_snippet(&new_text)
            } else {
                new_text
            },
        })),
        command,
        ..Default::default()
    };
    Ok(Some(CompletionResponse::List(CompletionList {
        is_incomplete: true,
        items: vec![item],
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_only_for_neovim_with_snippet_support() {
        assert!(wants_snippets(Some("Neovim"), true));
        assert!(!wants_snippets(Some("Neovim"), false));
        assert!(!wants_snippets(Some("helix"), true));
        assert!(!wants_snippets(None, true));
    }

    #[test]
    fn snippet_text_is_escaped() {
        assert_eq!(
            escape_snippet(r"f(${x}) \n $0"),
            r"f(\${x\}) \\n \$0".to_string()
        );
    }

    #[test]
    fn later_lines_become_relative_to_the_indentation() {
        let text = "x:\n        y = 1\n\n        return y\n    z";
        assert_eq!(
            relative_lines(text, "    "),
            "x:\n    y = 1\n\n    return y\nz"
        );
        // A line indented less than the cursor's line cannot be expressed: the text ends there.
        assert_eq!(relative_lines(text, "        "), "x:\ny = 1\n\nreturn y");
        assert_eq!(relative_lines("pass", "    "), "pass");
    }
}
