//! `textDocument/inlineCompletion` (LSP 3.18): the suggestion as ghost text at the cursor. When
//! the user typed at the requested position since the request, the item replaces that typed text
//! (`requested..cursor`, in the document as it is now) with itself plus the suggestion.

use moat_text::Position;
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::{
    InlineCompletionItem, InlineCompletionList, InlineCompletionParams, InlineCompletionResponse,
    Position as LspPosition, Range as LspRange,
};

use crate::feedback::Method;
use crate::handlers::feedback;
use crate::handlers::suggest::suggest;
use crate::server::MoatServer;

pub(crate) async fn handle(
    server: &MoatServer,
    params: InlineCompletionParams,
) -> RpcResult<Option<InlineCompletionResponse>> {
    let tdp = params.text_document_position;
    let position = Position {
        line: tdp.position.line,
        character: tdp.position.character,
    };
    let uri = &tdp.text_document.uri;
    let observation = feedback::observe(server, uri);
    let answer = suggest(server, uri, position).await?;
    let command = feedback::answered(server, observation, uri, Method::Inline, answer.as_ref());
    let Some(s) = answer else {
        return Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
            items: Vec::new(),
        })));
    };
    let start = LspPosition {
        line: s.requested.line,
        character: s.requested.character,
    };
    let end = LspPosition {
        line: s.cursor.line,
        character: s.cursor.character,
    };
    let item = InlineCompletionItem {
        insert_text: format!("{}{}", s.typed, s.text),
        filter_text: None,
        range: Some(LspRange { start, end }),
        command,
        insert_text_format: None,
    };
    Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
        items: vec![item],
    })))
}
