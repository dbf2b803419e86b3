//! `workspace/symbol`, served from the workspace index.

use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::{
    Location, OneOf, Position, Range, SymbolKind, Uri, WorkspaceSymbol, WorkspaceSymbolParams,
    WorkspaceSymbolResponse,
};

use crate::server::MoatServer;

const LIMIT: usize = 200;

fn kind(k: &str) -> SymbolKind {
    match k {
        "function" => SymbolKind::FUNCTION,
        "method" => SymbolKind::METHOD,
        "class" => SymbolKind::CLASS,
        "interface" => SymbolKind::INTERFACE,
        "type" => SymbolKind::STRUCT,
        "constant" => SymbolKind::CONSTANT,
        "module" => SymbolKind::MODULE,
        "macro" => SymbolKind::FUNCTION,
        _ => SymbolKind::VARIABLE,
    }
}

pub(crate) async fn handle(
    server: &MoatServer,
    params: WorkspaceSymbolParams,
) -> RpcResult<Option<WorkspaceSymbolResponse>> {
    let Some(index) = server.workspace.index() else {
        return Ok(Some(WorkspaceSymbolResponse::Nested(Vec::new())));
    };
    let query = params.query;
    let symbols = tokio::task::spawn_blocking(move || {
        let root = index.root().to_path_buf();
        (index.workspace_symbols(&query, LIMIT), root)
    })
    .await;
    let Ok((symbols, root)) = symbols else {
        return Ok(Some(WorkspaceSymbolResponse::Nested(Vec::new())));
    };
    let items = symbols
        .into_iter()
        .filter_map(|s| {
            let uri: Uri = format!("file://{}", root.join(&s.path).display())
                .parse()
                .ok()?;
            let at = Position {
                line: s.line,
                character: 0,
            };
            Some(WorkspaceSymbol {
                name: s.name,
                kind: kind(&s.kind),
                tags: None,
                container_name: s.container,
                location: OneOf::Left(Location {
                    uri,
                    range: Range { start: at, end: at },
                }),
                data: None,
            })
        })
        .collect();
    Ok(Some(WorkspaceSymbolResponse::Nested(items)))
}
