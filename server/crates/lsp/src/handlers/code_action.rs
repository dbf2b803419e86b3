//! `textDocument/codeAction` and `codeAction/resolve`: actions that write code
//! (`moat_actions`). Offering is cheap (a parse and a look at the tree); the edit is computed
//! only when the user picks an action (`codeAction/resolve`), on a blocking thread, with
//! `$/progress` when the client supports it and cancellation by `$/cancelRequest`.
//!
//! The resolve data carries the document's version: an action offered for an older version is
//! refused. Every refusal (stale version, a result that does not parse, no model) is a
//! `window/showMessage` and an action without an edit, so nothing changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moat_actions::{ActionError, ActionInput, ActionKind, Diagnostic, FileEdit, TestFile};
use moat_model::{Backend, OnnxOptions};
use moat_syntax::{Language, SyntaxTree};
use moat_text::{Document, PositionEncoding};
use serde::{Deserialize, Serialize};
use tower_lsp_server::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp_server::ls_types::request::WorkDoneProgressCreate;
use tower_lsp_server::ls_types::*;

use crate::model_slot::ModelState;
use crate::server::MoatServer;

/// Retrieval for an action gets longer than for a completion (the model then writes for
/// seconds).
const RETRIEVAL_DEADLINE: Duration = Duration::from_millis(100);

/// What an offered action needs to be computed later.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionData {
    uri: Uri,
    version: i32,
    action: ActionKind,
    range: Range,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    diagnostic: Option<DiagnosticData>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DiagnosticData {
    range: Range,
    message: String,
}

/// The command an action carries for clients that cannot resolve it (`codeAction/resolve`
/// without `resolveSupport` for `edit`): `workspace/executeCommand` with the action's data and
/// title computes the edit as resolve would and sends it with `workspace/applyEdit`.
pub(crate) const RUN_COMMAND: &str = "moat.runCodeAction";

/// The code actions' own server state: backends for actions set to run on the model's
/// `[remote]` server (`codeActionRemote`), loaded on first use and kept per manifest path, the
/// number of the next progress token, and whether the client resolves actions.
#[derive(Default)]
pub(crate) struct RemoteBackends {
    remote: Mutex<HashMap<PathBuf, Arc<dyn Backend>>>,
    next_token: std::sync::atomic::AtomicU64,
    without_resolve: std::sync::atomic::AtomicBool,
}

/// `initialize`: whether the client can resolve an action's `edit`; without it every action
/// carries [`RUN_COMMAND`].
pub(crate) fn client_capabilities(server: &MoatServer, capabilities: &ClientCapabilities) {
    let resolves = capabilities
        .text_document
        .as_ref()
        .and_then(|t| t.code_action.as_ref())
        .and_then(|c| c.resolve_support.as_ref())
        .is_some_and(|r| r.properties.iter().any(|p| p == "edit"));
    server
        .action_backends
        .without_resolve
        .store(!resolves, std::sync::atomic::Ordering::SeqCst);
}

fn to_offsets(
    doc: &Document,
    range: Range,
    enc: PositionEncoding,
) -> Result<std::ops::Range<usize>, String> {
    let lines = doc.len_lines() as u32;
    if range.start.line > lines || range.end.line > lines {
        return Err(format!(
            "the range {}:{}-{}:{} is outside the document ({lines} lines)",
            range.start.line, range.start.character, range.end.line, range.end.character
        ));
    }
    let start = doc
        .offset(to_text_position(range.start), enc)
        .map_err(|e| format!("the range is outside the document: {e}"))?;
    let end = doc
        .offset(to_text_position(range.end), enc)
        .map_err(|e| format!("the range is outside the document: {e}"))?;
    if start > end {
        return Err("the range ends before it starts".into());
    }
    Ok(start..end)
}

fn to_text_position(p: Position) -> moat_text::Position {
    moat_text::Position {
        line: p.line,
        character: p.character,
    }
}

fn to_lsp_position(p: moat_text::Position) -> Position {
    Position {
        line: p.line,
        character: p.character,
    }
}

fn code_action_kind(kind: ActionKind) -> CodeActionKind {
    match kind {
        ActionKind::FixDiagnostic => CodeActionKind::QUICKFIX,
        _ => CodeActionKind::REFACTOR_REWRITE,
    }
}

fn wanted(only: &Option<Vec<CodeActionKind>>, kind: &CodeActionKind) -> bool {
    match only {
        None => true,
        Some(only) => only.iter().any(|o| {
            kind.as_str() == o.as_str() || kind.as_str().starts_with(&format!("{}.", o.as_str()))
        }),
    }
}

pub(crate) async fn code_action(
    server: &MoatServer,
    params: CodeActionParams,
) -> RpcResult<Option<CodeActionResponse>> {
    let config = server.config();
    if !config.code_actions {
        return Ok(None);
    }
    let enc = server.encoding();
    let uri = params.text_document.uri;
    let key = uri.to_string();
    let (text, version, language, range, diagnostics) = {
        let Some(state) = server.docs.get(&key) else {
            return Err(RpcError::invalid_params(format!(
                "document not open: {key}"
            )));
        };
        if !config.serves_language(state.doc.language_id()) {
            return Ok(None);
        }
        let Some(language) = state.language else {
            return Ok(None);
        };
        let range = to_offsets(&state.doc, params.range, enc).map_err(RpcError::invalid_params)?;
        // Diagnostics outside the document are skipped (they belong to another version).
        let diagnostics: Vec<(Diagnostic, DiagnosticData)> = params
            .context
            .diagnostics
            .iter()
            .filter_map(|d| {
                let r = to_offsets(&state.doc, d.range, enc).ok()?;
                Some((
                    Diagnostic {
                        range: r,
                        message: d.message.clone(),
                    },
                    DiagnosticData {
                        range: d.range,
                        message: d.message.clone(),
                    },
                ))
            })
            .collect();
        (
            state.doc.text(),
            state.doc.version(),
            language,
            range,
            diagnostics,
        )
    };
    let only = params.context.only.clone();
    let without_resolve = server
        .action_backends
        .without_resolve
        .load(std::sync::atomic::Ordering::SeqCst);
    let plain: Vec<Diagnostic> = diagnostics.iter().map(|(d, _)| d.clone()).collect();
    let offers = tokio::task::spawn_blocking(move || {
        SyntaxTree::parse(language, &text)
            .map(|tree| moat_actions::offers(&tree, &text, range, &plain))
            .unwrap_or_default()
    })
    .await
    .map_err(|_| RpcError::internal_error())?;
    let mut out = Vec::new();
    for offer in offers {
        let kind = code_action_kind(offer.kind);
        if !wanted(&only, &kind) {
            continue;
        }
        let diagnostic = offer.diagnostic.and_then(|i| diagnostics.get(i));
        let data = ActionData {
            uri: uri.clone(),
            version,
            action: offer.kind,
            range: params.range,
            diagnostic: diagnostic.map(|(_, d)| d.clone()),
        };
        let data = serde_json::to_value(data).ok();
        // A client that cannot resolve the edit runs the command instead.
        let command = match &data {
            Some(data) if without_resolve => Some(Command {
                title: offer.title.clone(),
                command: RUN_COMMAND.into(),
                arguments: Some(vec![data.clone(), offer.title.clone().into()]),
            }),
            _ => None,
        };
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: offer.title,
            kind: Some(kind),
            diagnostics: diagnostic.and_then(|(_, d)| {
                params
                    .context
                    .diagnostics
                    .iter()
                    .find(|c| c.range == d.range && c.message == d.message)
                    .map(|c| vec![c.clone()])
            }),
            data,
            command,
            ..Default::default()
        }));
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Tells the user why nothing changed; there is no edit.
async fn refuse(server: &MoatServer, why: &str) -> RpcResult<Option<WorkspaceEdit>> {
    tracing::info!("code action refused: {why}");
    server
        .client
        .show_message(MessageType::WARNING, format!("moat: {why}"))
        .await;
    Ok(None)
}

fn action_data(value: Option<serde_json::Value>) -> RpcResult<ActionData> {
    value
        .and_then(|d| serde_json::from_value::<ActionData>(d).ok())
        .ok_or_else(|| RpcError::invalid_params("this code action's data is missing or not moat's"))
}

/// `codeAction/resolve`: the action with its edit, or as it came (no edit) when refused.
pub(crate) async fn resolve(server: &MoatServer, action: CodeAction) -> RpcResult<CodeAction> {
    let data = action_data(action.data.clone())?;
    let what = action.title.trim_start_matches("moat: ");
    let edit = compute(server, &data, what).await?;
    Ok(CodeAction { edit, ..action })
}

/// `workspace/executeCommand` for [`RUN_COMMAND`] (arguments: the action's data, its title):
/// computes the edit as resolve does and asks the client to apply it (`workspace/applyEdit`).
pub(crate) async fn execute_command(
    server: &MoatServer,
    params: &ExecuteCommandParams,
) -> RpcResult<Option<serde_json::Value>> {
    let data = action_data(params.arguments.first().cloned())?;
    let what = params
        .arguments
        .get(1)
        .and_then(serde_json::Value::as_str)
        .map_or(data.action.name(), |t| t.trim_start_matches("moat: "))
        .to_string();
    let Some(edit) = compute(server, &data, &what).await? else {
        return Ok(None);
    };
    let why = match server.client.apply_edit(edit).await {
        Ok(answer) if answer.applied => return Ok(None),
        Ok(answer) => answer.failure_reason.unwrap_or_default(),
        Err(e) => e.message.into_owned(),
    };
    refuse(
        server,
        &format!("{what}: the editor did not apply the edit ({why})"),
    )
    .await?;
    Ok(None)
}

/// The edit of an offered action (`None`: refused, and the user was told why). Cancelled by the
/// request's `$/cancelRequest` or by another action on the document.
async fn compute(
    server: &MoatServer,
    data: &ActionData,
    what: &str,
) -> RpcResult<Option<WorkspaceEdit>> {
    let config = server.config();
    let enc = server.encoding();
    let key = data.uri.to_string();
    let (doc, language) = {
        let Some(state) = server.docs.get(&key) else {
            return refuse(server, "the document is not open any more").await;
        };
        (state.doc.clone(), state.language)
    };
    if doc.version() != data.version {
        let why = format!(
            "the document changed since the action was offered (version {} → {}); nothing changed, ask again",
            data.version,
            doc.version()
        );
        return refuse(server, &why).await;
    }
    let Some(language) = language else {
        return refuse(server, "this language is not supported").await;
    };
    let range = match to_offsets(&doc, data.range, enc) {
        Ok(r) => r,
        Err(why) => return refuse(server, &format!("{why}; nothing changed")).await,
    };
    let diagnostic = match &data.diagnostic {
        Some(d) => match to_offsets(&doc, d.range, enc) {
            Ok(r) => Some(Diagnostic {
                range: r,
                message: d.message.clone(),
            }),
            Err(why) => {
                return refuse(server, &format!("diagnostic: {why}; nothing changed")).await;
            }
        },
        None => None,
    };

    // Cancelled when the client cancels the request (the future is dropped with the job) or
    // when another action starts on this document.
    let job = server.scheduler.begin(&format!("{key}#codeAction"));
    let backend = match backend_for(server, &config, data.action, &job).await {
        Ok(b) => b,
        Err(BackendProblem::Cancelled) => return Err(RpcError::request_cancelled()),
        Err(BackendProblem::Unavailable(why)) => return refuse(server, &why).await,
    };

    let progress = start_progress(server, what).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // Reports until the worker drops its sender, then ends the progress.
    let reporter = progress.map(|p| {
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                p.report(message).await;
            }
            p.finish().await;
        })
    });

    let (root, rel_path) = workspace_root(server, &data.uri);
    let index = if config.repo_context {
        server.workspace.index()
    } else {
        None
    };
    let budget = config.repo_context_bytes;
    let cancel = job.cancel.clone();
    let kind = data.action;
    let text = doc.text();
    let worker_root = root.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let root = worker_root;
        let tree = SyntaxTree::parse(language, &text)
            .ok_or_else(|| ActionError::NotApplicable("the file could not be parsed".into()))?;
        let function = moat_actions::function_at(&tree, &text, range.clone());
        let test_file = match (&function, kind) {
            (Some(f), ActionKind::WriteTest) => root.as_deref().and_then(|root| {
                find_test_file(root, &rel_path, language, &f.name, index.as_deref())
            }),
            _ => None,
        };
        let snippets = match (&index, &function) {
            // What the index finds for the code above the function.
            (Some(index), Some(f)) => moat_context::gather(
                index,
                &moat_context::Request {
                    path: &rel_path,
                    text: &text,
                    cursor: f.range.start,
                    open_documents: &[],
                    budget_bytes: budget,
                    deadline: Some(RETRIEVAL_DEADLINE),
                },
            ),
            _ => Vec::new(),
        };
        let input = ActionInput {
            kind,
            text: &text,
            path: &rel_path,
            tree: &tree,
            range,
            diagnostic: diagnostic.as_ref(),
            snippets: &snippets,
            test_file: test_file.as_ref(),
        };
        let report = |m: &str| {
            let _ = tx.send(m.to_string());
        };
        moat_actions::run(&input, backend.as_ref(), &cancel, &report)
            .map(|outcome| (outcome, test_file))
    });
    let result = worker.await;
    if let Some(r) = reporter {
        let _ = r.await;
    }
    let result = result.map_err(|e| {
        tracing::error!("code action worker failed: {e}");
        RpcError::internal_error()
    })?;
    let (outcome, test_file) = match result {
        Ok(r) => r,
        Err(ActionError::Cancelled) => {
            tracing::debug!("code action cancelled");
            return Err(RpcError::request_cancelled());
        }
        Err(e) => return refuse(server, &format!("{what}: {e}")).await,
    };
    tracing::info!(
        action = kind.name(),
        prompt = outcome.prompt_tokens,
        generated = outcome.generated_tokens,
        ms = outcome.elapsed.as_millis() as u64,
        "code action"
    );
    // The document may have changed while the model wrote.
    let now = server.docs.get(&key).map(|s| s.doc.version());
    if now != Some(data.version) {
        return refuse(
            server,
            "the document changed while the action ran; nothing changed, ask again",
        )
        .await;
    }
    let edit = match workspace_edit(
        &data.uri,
        &doc,
        enc,
        &outcome.edits,
        test_file.as_ref(),
        root.as_deref(),
    ) {
        Ok(e) => e,
        Err(why) => return refuse(server, &why).await,
    };
    Ok(Some(edit))
}

/// The workspace folder holding the document and its path in it; a document outside every
/// folder has its own folder as the root.
fn workspace_root(server: &MoatServer, uri: &Uri) -> (Option<PathBuf>, String) {
    let rel = server.relative_path(uri);
    let Some(path) = crate::workspace::uri_path(uri.as_str()) else {
        return (None, rel);
    };
    let path = path.to_string_lossy().into_owned();
    match path.strip_suffix(&rel).filter(|_| !rel.starts_with('/')) {
        Some(root) => (Some(PathBuf::from(root)), rel),
        None => {
            let p = Path::new(&path);
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (p.parent().map(Path::to_path_buf), name.unwrap_or(rel))
        }
    }
}

enum BackendProblem {
    Cancelled,
    Unavailable(String),
}

/// The model for an action: the server's model, or the manifest's `[remote]` server when
/// `codeActionRemote` names the action. Waits for a loading model (bounded by `loadWaitMs`).
async fn backend_for(
    server: &MoatServer,
    config: &crate::config::Config,
    kind: ActionKind,
    job: &crate::scheduler::Job,
) -> Result<Arc<dyn Backend>, BackendProblem> {
    if config
        .code_action_remote
        .iter()
        .any(|a| a == kind.name() || a == "all")
    {
        let Some(path) = server.model_path_for_actions(config) else {
            return Err(BackendProblem::Unavailable("no model is configured".into()));
        };
        if let Ok(cache) = server.action_backends.remote.lock()
            && let Some(b) = cache.get(&path)
        {
            return Ok(b.clone());
        }
        let options = OnnxOptions {
            threads: config.threads,
            ort_library: config.onnxruntime_path.clone(),
        };
        let load_path = path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let manifest = moat_model::Manifest::load(&load_path).map_err(|e| e.to_string())?;
            if manifest.remote.is_none() {
                return Err(format!(
                    "{} has no [remote] section, so {} cannot run remotely (codeActionRemote)",
                    load_path.display(),
                    kind.name()
                ));
            }
            moat_model::load_backend(&load_path, &options, true).map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| BackendProblem::Unavailable("the remote model failed to load".into()))?
        .map_err(BackendProblem::Unavailable)?;
        if let Ok(mut cache) = server.action_backends.remote.lock() {
            cache.insert(path, loaded.clone());
        }
        return Ok(loaded);
    }
    match server.model.state() {
        ModelState::Ready(b) => Ok(b),
        ModelState::Failed(m) => Err(BackendProblem::Unavailable(format!("no model: {m}"))),
        ModelState::Loading => {
            let limit = Duration::from_millis(config.load_wait_ms.max(1));
            tokio::select! {
                state = server.model.wait_until_loaded() => match state {
                    ModelState::Ready(b) => Ok(b),
                    ModelState::Failed(m) => Err(BackendProblem::Unavailable(format!("no model: {m}"))),
                    ModelState::Loading => Err(BackendProblem::Unavailable("the model is still loading".into())),
                },
                _ = job.cancelled() => Err(BackendProblem::Cancelled),
                _ = tokio::time::sleep(limit) => Err(BackendProblem::Unavailable("the model is still loading; try again in a moment".into())),
            }
        }
    }
}

async fn start_progress(
    server: &MoatServer,
    title: &str,
) -> Option<
    tower_lsp_server::OngoingProgress<
        tower_lsp_server::Unbounded,
        tower_lsp_server::NotCancellable,
    >,
> {
    if !server.progress_supported() {
        return None;
    }
    let n = server
        .action_backends
        .next_token
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = ProgressToken::String(format!("moat/codeAction/{n}"));
    server
        .client
        .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
            token: token.clone(),
        })
        .await
        .ok()?;
    Some(
        server
            .client
            .progress(token, format!("moat: {title}"))
            .begin()
            .await,
    )
}

/// Where a test for `name` (defined in `rel_path`) goes: the repository's existing test file for
/// that module (by convention, else the test file the index finds that mentions the module),
/// a new one beside it (Python), or the file itself (Rust's `mod tests`).
fn find_test_file(
    root: &Path,
    rel_path: &str,
    language: Language,
    name: &str,
    index: Option<&moat_index::Index>,
) -> Option<TestFile> {
    if language == Language::Rust {
        return None;
    }
    let rel = Path::new(rel_path);
    let stem = rel.file_stem()?.to_str()?;
    let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
    let dir = rel.parent().unwrap_or(Path::new(""));
    let candidates: Vec<PathBuf> = match language {
        Language::Python => vec![
            dir.join(format!("test_{stem}.py")),
            dir.join("tests").join(format!("test_{stem}.py")),
            PathBuf::from("tests").join(format!("test_{stem}.py")),
            PathBuf::from("test").join(format!("test_{stem}.py")),
            dir.join(format!("{stem}_test.py")),
        ],
        _ => vec![
            dir.join(format!("{stem}.test.{ext}")),
            dir.join(format!("{stem}.spec.{ext}")),
            dir.join("__tests__").join(format!("{stem}.test.{ext}")),
            PathBuf::from("test").join(format!("{stem}.test.{ext}")),
            PathBuf::from("tests").join(format!("{stem}.test.{ext}")),
        ],
    };
    let mut found = candidates.into_iter().find(|c| root.join(c).is_file());
    if found.is_none()
        && let Some(index) = index
    {
        // Test files the index knows that mention the module.
        let mut best: Option<(usize, String)> = None;
        let mut seen = std::collections::HashSet::new();
        for symbol in index.workspace_symbols("test", 200) {
            if !symbol.path.contains("test")
                || !symbol.path.ends_with(ext)
                || symbol.path == rel_path
                || !seen.insert(symbol.path.clone())
                || std::fs::metadata(root.join(&symbol.path)).map_or(true, |m| m.len() > 512 * 1024)
            {
                continue;
            }
            let Ok(t) = std::fs::read_to_string(root.join(&symbol.path)) else {
                continue;
            };
            let score = t.matches(stem).count() + 3 * t.matches(name).count();
            if score > 0 && best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, symbol.path.clone()));
            }
        }
        found = best.map(|(_, p)| PathBuf::from(p));
    }
    let module = rel_path
        .strip_suffix(&format!(".{ext}"))
        .unwrap_or(rel_path);
    match found {
        Some(p) => {
            let text = std::fs::read_to_string(root.join(&p)).ok()?;
            let import_line = import_line(language, module, stem, name, &p, rel);
            Some(TestFile {
                path: Some(p.to_string_lossy().into_owned()),
                text: Some(text),
                import_line,
            })
        }
        None if language == Language::Python => {
            let p = dir.join(format!("test_{stem}.py"));
            Some(TestFile {
                import_line: import_line(language, module, stem, name, &p, rel),
                path: Some(p.to_string_lossy().into_owned()),
                text: None,
            })
        }
        None => None,
    }
}

fn import_line(
    language: Language,
    module: &str,
    stem: &str,
    name: &str,
    test_path: &Path,
    source: &Path,
) -> Option<String> {
    match language {
        Language::Python => {
            let module = module
                .strip_prefix("src/")
                .unwrap_or(module)
                .replace('/', ".");
            Some(format!("from {module} import {name}"))
        }
        _ => {
            let up = test_path
                .parent()
                .map_or(0, |p| p.components().count())
                .saturating_sub(source.parent().map_or(0, |p| p.components().count()));
            let rel = if up == 0 {
                format!("./{stem}")
            } else {
                format!("{}{stem}", "../".repeat(up))
            };
            Some(format!("import {{ {name} }} from \"{rel}\";"))
        }
    }
}

fn workspace_edit(
    uri: &Uri,
    doc: &Document,
    enc: PositionEncoding,
    edits: &[FileEdit],
    test_file: Option<&TestFile>,
    root: Option<&Path>,
) -> Result<WorkspaceEdit, String> {
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    let mut document_changes = Vec::new();
    for e in edits {
        match &e.path {
            None => {
                let range = Range {
                    start: to_lsp_position(doc.position(e.range.start, enc)),
                    end: to_lsp_position(doc.position(e.range.end, enc)),
                };
                changes.entry(uri.clone()).or_default().push(TextEdit {
                    range,
                    new_text: e.new_text.clone(),
                });
            }
            Some(path) => {
                let root = root.ok_or("no workspace folder to write the test into")?;
                let target = root.join(path);
                let target_uri: Uri = format!("file://{}", target.display())
                    .parse()
                    .map_err(|_| format!("bad path {}", target.display()))?;
                let old = test_file.and_then(|t| t.text.clone()).unwrap_or_default();
                let other = Document::new(&old, 0, "");
                let range = Range {
                    start: to_lsp_position(other.position(e.range.start.min(old.len()), enc)),
                    end: to_lsp_position(other.position(e.range.end.min(old.len()), enc)),
                };
                let edit = TextEdit {
                    range,
                    new_text: e.new_text.clone(),
                };
                if e.create {
                    document_changes.push(DocumentChangeOperation::Op(ResourceOp::Create(
                        CreateFile {
                            uri: target_uri.clone(),
                            options: Some(CreateFileOptions {
                                overwrite: Some(false),
                                ignore_if_exists: Some(true),
                            }),
                            annotation_id: None,
                        },
                    )));
                    document_changes.push(DocumentChangeOperation::Edit(TextDocumentEdit {
                        text_document: OptionalVersionedTextDocumentIdentifier {
                            uri: target_uri,
                            version: None,
                        },
                        edits: vec![OneOf::Left(edit)],
                    }));
                } else {
                    changes.entry(target_uri).or_default().push(edit);
                }
            }
        }
    }
    if document_changes.is_empty() {
        return Ok(WorkspaceEdit {
            changes: Some(changes),
            ..Default::default()
        });
    }
    for (uri, edits) in changes {
        document_changes.push(DocumentChangeOperation::Edit(TextDocumentEdit {
            text_document: OptionalVersionedTextDocumentIdentifier { uri, version: None },
            edits: edits.into_iter().map(OneOf::Left).collect(),
        }));
    }
    Ok(WorkspaceEdit {
        document_changes: Some(DocumentChanges::Operations(document_changes)),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_reach_the_source_from_the_test() {
        for (language, module, source, test, want) in [
            (
                Language::TypeScript,
                "src/lib/math",
                "src/lib/math.ts",
                "src/lib/math.test.ts",
                "import { add } from \"./math\";",
            ),
            (
                Language::TypeScript,
                "src/lib/math",
                "src/lib/math.ts",
                "src/lib/__tests__/math.test.ts",
                "import { add } from \"../math\";",
            ),
            (
                Language::Python,
                "src/pkg/math",
                "src/pkg/math.py",
                "tests/test_math.py",
                "from pkg.math import add",
            ),
        ] {
            let got = import_line(
                language,
                module,
                "math",
                "add",
                Path::new(test),
                Path::new(source),
            );
            assert_eq!(got.as_deref(), Some(want), "{test}");
        }
    }

    #[test]
    fn ranges_outside_the_document_are_refused() {
        let doc = Document::new("a\nb\n", 1, "python");
        let r = |l1, c1, l2, c2| Range {
            start: Position {
                line: l1,
                character: c1,
            },
            end: Position {
                line: l2,
                character: c2,
            },
        };
        assert!(to_offsets(&doc, r(0, 0, 1, 1), PositionEncoding::Utf16).is_ok());
        assert!(to_offsets(&doc, r(0, 0, 99, 0), PositionEncoding::Utf16).is_err());
        assert!(to_offsets(&doc, r(1, 1, 0, 0), PositionEncoding::Utf16).is_err());
    }
}
