//! `textDocument/completion`: for clients without inline completion (Helix). One item whose label
//! previews the suggestion and whose `textEdit` replaces the word before the cursor with that word
//! plus the suggestion, so the client's filtering on the typed word keeps it.

use moat_text::Position;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::{
    CompletionItem, CompletionItemKind, CompletionList, CompletionParams, CompletionResponse,
    CompletionTextEdit, Documentation, InsertTextFormat, MarkupContent, MarkupKind,
    Position as LspPosition, Range as LspRange, TextEdit,
};

use crate::handlers::suggest::suggest;
use crate::server::MoatServer;

const LABEL_CHARS: usize = 60;

pub(crate) async fn handle(
    server: &MoatServer,
    params: CompletionParams,
) -> RpcResult<Option<CompletionResponse>> {
    let tdp = params.text_document_position;
    let position = Position {
        line: tdp.position.line,
        character: tdp.position.character,
    };
    let Some(s) = suggest(server, &tdp.text_document.uri, position).await? else {
        return Ok(Some(CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: Vec::new(),
        })));
    };
    let new_text = format!("{}{}", s.word, s.text);
    let first_line = new_text
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut label: String = first_line.chars().take(LABEL_CHARS).collect();
    if first_line.chars().count() > LABEL_CHARS || new_text.contains('\n') {
        label.push('…');
    }
    let range = LspRange {
        start: LspPosition {
            line: s.word_start.line,
            character: s.word_start.character,
        },
        end: LspPosition {
            line: s.position.line,
            character: s.position.character,
        },
    };
    let item = CompletionItem {
        label,
        kind: Some(CompletionItemKind::TEXT),
        detail: Some("moat".into()),
        documentation: Some(Documentation::MarkupContent(MarkupContent {
            kind: MarkupKind::Markdown,
            value: format!("```\n{new_text}\n```"),
        })),
        filter_text: Some(new_text.clone()),
        sort_text: Some("0".into()),
        preselect: Some(true),
        insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit { range, new_text })),
        ..Default::default()
    };
    Ok(Some(CompletionResponse::List(CompletionList {
        is_incomplete: true,
        items: vec![item],
    })))
}
