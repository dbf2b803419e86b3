//! The server state and the `LanguageServer` implementation; each request's work is in
//! `handlers/`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use dashmap::DashMap;
use moat_complete::ShownSuggestion;
use moat_model::OnnxOptions;
use moat_syntax::{Language, SyntaxTree};
use moat_text::{Document, PositionEncoding};
use tower_lsp_server::jsonrpc::Result as RpcResult;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use crate::config::Config;
use crate::handlers;
use crate::model_slot::{ModelSlot, ModelState};
use crate::scheduler::Scheduler;
use crate::workspace::{Workspace, uri_path};

/// An open document and what the server derived from it.
pub(crate) struct DocState {
    pub doc: Document,
    pub language: Option<Language>,
    /// Edited on every change; reparsed lazily (off the editor's path) when a request needs it.
    pub tree: Option<SyntaxTree>,
    pub tree_fresh: bool,
    /// Edits since the last stored parse, so a tree parsed from an older snapshot (while the user
    /// kept typing) can be brought up to date instead of thrown away.
    pub pending_edits: Vec<(u64, moat_syntax::TextEdit)>,
    /// Counts applied changes (LSP versions are the client's and need not be dense).
    pub revision: u64,
    pub shown: Option<ShownSuggestion>,
}

pub struct MoatServer {
    pub(crate) client: Client,
    pub(crate) docs: Arc<DashMap<String, DocState>>,
    pub(crate) config: RwLock<Config>,
    pub(crate) encoding: OnceLock<PositionEncoding>,
    pub(crate) model: ModelSlot,
    pub(crate) scheduler: Arc<Scheduler>,
    pub(crate) workspace: Workspace,
    /// Which shown suggestions were accepted (`crate::feedback`, docs/feedback.md).
    pub(crate) feedback: Arc<crate::feedback::Tracker>,
    /// Completion items as snippets (see `handlers::completion`): for clients that cut plain-text
    /// items at the first whitespace (Neovim's built-in `vim.lsp.completion`).
    pub(crate) snippet_items: AtomicBool,
    progress_supported: AtomicBool,
    /// Remote backends of code actions (`codeActionRemote`).
    pub(crate) action_backends: handlers::code_action::RemoteBackends,
    watch_registration_supported: AtomicBool,
    /// Workspace folders (paths), from `initialize`.
    roots: RwLock<Vec<String>>,
    default_model: Option<PathBuf>,
    shutdown_requested: Arc<AtomicBool>,
}

/// How the server ended: per the LSP spec the process exits 0 only if `shutdown` came first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeOutcome {
    CleanExit,
    ExitWithoutShutdown,
}

/// Serves LSP on stdin/stdout until `exit` (or the end of input).
pub async fn serve_stdio(default_model: Option<PathBuf>) -> ServeOutcome {
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let scheduler = Arc::new(Scheduler::default());
    let jobs = scheduler.clone();
    let feedback = Arc::new(crate::feedback::Tracker::from_env());
    let records = feedback.clone();
    let (service, socket) = LspService::build(move |client| {
        let mut server = MoatServer::new(client, default_model.clone(), flag.clone(), jobs.clone());
        server.feedback = records.clone();
        server
    })
    .custom_method(
        "textDocument/inlineCompletion",
        MoatServer::inline_completion,
    )
    .finish();
    // Malformed input is dropped before tower-lsp-server sees it: its reader stops for good at
    // the first frame it cannot decode (see `transport`).
    let (input, checked) = tokio::io::duplex(64 * 1024);
    let received = Arc::new(AtomicBool::new(false));
    let shutdown_received = received.clone();
    tokio::spawn(async move {
        crate::transport::forward_valid_frames(tokio::io::stdin(), input, &received).await;
        // End of input: requests still waiting for the model must not keep the server alive.
        scheduler.close();
    });
    Server::new(checked, tokio::io::stdout(), socket)
        .concurrency_level(64)
        .serve(service)
        .await;
    // `exit` without `shutdown`, or the end of input: what was recorded reaches the disk.
    let _ =
        tokio::task::spawn_blocking(move || feedback.flush(std::time::Duration::from_millis(500)))
            .await;
    // `shutdown` answered, or received and then cut short by an `exit` right behind it.
    if shutdown.load(Ordering::SeqCst) || shutdown_received.load(Ordering::SeqCst) {
        ServeOutcome::CleanExit
    } else {
        ServeOutcome::ExitWithoutShutdown
    }
}

impl MoatServer {
    fn new(
        client: Client,
        default_model: Option<PathBuf>,
        shutdown_requested: Arc<AtomicBool>,
        scheduler: Arc<Scheduler>,
    ) -> Self {
        Self {
            client,
            docs: Arc::new(DashMap::new()),
            config: RwLock::new(Config::default()),
            encoding: OnceLock::new(),
            model: ModelSlot::default(),
            scheduler,
            snippet_items: AtomicBool::new(false),
            roots: RwLock::new(Vec::new()),
            workspace: Workspace::default(),
            feedback: Arc::new(crate::feedback::Tracker::new(None)),
            progress_supported: AtomicBool::new(false),
            action_backends: Default::default(),
            watch_registration_supported: AtomicBool::new(false),
            default_model,
            shutdown_requested,
        }
    }

    pub(crate) fn config(&self) -> Config {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The document's path relative to its workspace folder (the URI's path if outside any).
    pub(crate) fn relative_path(&self, uri: &Uri) -> String {
        let uri = uri.as_str();
        let path = uri.strip_prefix("file://").unwrap_or(uri);
        let roots = self.roots.read().map(|r| r.clone()).unwrap_or_default();
        for root in roots {
            let root = root.trim_end_matches('/');
            if let Some(rest) = path.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
                return rest.to_string();
            }
        }
        path.to_string()
    }

    pub(crate) fn encoding(&self) -> PositionEncoding {
        self.encoding
            .get()
            .copied()
            .unwrap_or(PositionEncoding::Utf16)
    }

    async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> RpcResult<Option<InlineCompletionResponse>> {
        handlers::inline_completion::handle(self, params).await
    }

    pub(crate) fn progress_supported(&self) -> bool {
        self.progress_supported.load(Ordering::SeqCst)
    }

    pub(crate) fn model_path_for_actions(&self, config: &Config) -> Option<PathBuf> {
        self.model_path(config)
    }

    fn model_path(&self, config: &Config) -> Option<PathBuf> {
        config
            .model_path
            .clone()
            .or_else(|| self.workspace_model())
            .or_else(|| self.default_model.clone())
    }

    /// The model the first workspace folder's `.moat.toml` names (a problem with it is logged
    /// and the default is used; [`Self::start_model_load`] shows it to the user).
    fn workspace_model(&self) -> Option<PathBuf> {
        self.workspace_model_choice().unwrap_or_else(|message| {
            tracing::warn!("{message}");
            None
        })
    }

    fn workspace_model_choice(&self) -> Result<Option<PathBuf>, String> {
        let root = self.roots.read().ok().and_then(|r| r.first().cloned());
        match root {
            Some(root) => crate::model_slot::workspace_model(std::path::Path::new(&root)),
            None => Ok(None),
        }
    }

    /// A `.moat.toml` changed: load the model it now chooses, unless that one is loaded already.
    fn workspace_config_changed(&self) {
        let config = self.config();
        if self.model_path(&config) != self.model.path() {
            self.start_model_load();
        }
    }

    pub(crate) fn start_model_load(&self) {
        let config = self.config();
        if config.model_path.is_none()
            && let Err(message) = self.workspace_model_choice()
        {
            let client = self.client.clone();
            tokio::spawn(async move {
                client
                    .show_message(MessageType::WARNING, format!("moat: {message}"))
                    .await
            });
        }
        let Some(path) = self.model_path(&config) else {
            let msg = "moat: no model configured (set moat.modelPath or install the default model)";
            self.set_failed(msg.to_string());
            return;
        };
        let client = self.client.clone();
        let options = OnnxOptions {
            threads: config.threads,
            ort_library: config.onnxruntime_path.clone(),
        };
        notify_status(
            &self.client,
            "loading",
            &format!("loading {}", path.display()),
        );
        let handle = tokio::runtime::Handle::current();
        self.model.load(path, options, move |outcome| {
            handle.spawn(async move {
                match outcome {
                    Ok(describe) => {
                        tracing::info!("model ready: {describe}");
                        client
                            .log_message(
                                MessageType::INFO,
                                format!("moat: model ready: {describe}"),
                            )
                            .await;
                        notify_status(&client, "ready", &describe);
                    }
                    Err(message) => {
                        tracing::error!("{message}");
                        client
                            .show_message(MessageType::ERROR, format!("moat: {message}"))
                            .await;
                        notify_status(&client, "error", &message);
                    }
                }
            });
        });
    }

    fn set_failed(&self, message: String) {
        self.model.fail(message.clone());
        let client = self.client.clone();
        tokio::spawn(async move {
            client
                .show_message(MessageType::ERROR, message.clone())
                .await;
            notify_status(&client, "error", &message);
        });
    }

    fn apply_settings(&self, value: &serde_json::Value) {
        let old = self.config();
        let (new, problem) = old.merged(value);
        let reload = old.model_changed(&new);
        if let Ok(mut c) = self.config.write() {
            *c = new;
        }
        if reload && !matches!(self.model.state(), ModelState::Loading) {
            self.start_model_load();
        }
        if let Some(message) = problem {
            tracing::warn!("{message}");
            let client = self.client.clone();
            tokio::spawn(async move {
                client
                    .show_message(MessageType::WARNING, format!("moat: {message}"))
                    .await
            });
        }
    }
}

/// `moat/status`: a small custom notification for status bars (loading / ready / error).
pub(crate) fn notify_status(client: &Client, state: &str, message: &str) {
    let client = client.clone();
    let params = serde_json::json!({ "state": state, "message": message });
    tokio::spawn(async move { client.send_notification::<StatusNotification>(params).await });
}

enum StatusNotification {}
impl notification::Notification for StatusNotification {
    type Params = serde_json::Value;
    const METHOD: &'static str = "moat/status";
}

impl LanguageServer for MoatServer {
    async fn initialize(&self, params: InitializeParams) -> RpcResult<InitializeResult> {
        let offered: Vec<String> = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref())
            .map(|encodings| encodings.iter().map(|e| e.as_str().to_string()).collect())
            .unwrap_or_default();
        let mut roots: Vec<String> = params
            .workspace_folders
            .iter()
            .flatten()
            .map(|f| f.uri.as_str().trim_start_matches("file://").to_string())
            .collect();
        #[allow(deprecated)]
        if let Some(root) = &params.root_uri {
            roots.push(root.as_str().trim_start_matches("file://").to_string());
        }
        if let Ok(mut r) = self.roots.write() {
            *r = roots;
        }
        let window_progress = params
            .capabilities
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false);
        self.progress_supported
            .store(window_progress, Ordering::SeqCst);
        let watch = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        self.watch_registration_supported
            .store(watch, Ordering::SeqCst);
        let snippets = params
            .capabilities
            .text_document
            .as_ref()
            .and_then(|t| t.completion.as_ref())
            .and_then(|c| c.completion_item.as_ref())
            .and_then(|i| i.snippet_support)
            .unwrap_or(false);
        handlers::code_action::client_capabilities(self, &params.capabilities);
        let client_name = params.client_info.as_ref().map(|c| c.name.as_str());
        self.feedback.set_client(client_name.map(str::to_string));
        self.snippet_items.store(
            handlers::completion::wants_snippets(client_name, snippets),
            Ordering::SeqCst,
        );
        let encoding = PositionEncoding::negotiate(offered.iter().map(String::as_str));
        let _ = self.encoding.set(encoding);
        if let Some(options) = &params.initialization_options {
            match Config::from_json(options) {
                Ok(c) => {
                    if let Ok(mut cfg) = self.config.write() {
                        *cfg = c;
                    }
                }
                Err(message) => tracing::warn!("{message}"),
            }
        }
        let capabilities = ServerCapabilities {
            position_encoding: Some(PositionEncodingKind::new(encoding.as_lsp())),
            text_document_sync: Some(TextDocumentSyncCapability::Options(
                TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..Default::default()
                },
            )),
            completion_provider: Some(CompletionOptions {
                resolve_provider: Some(false),
                // Clients without inline completion (Helix, Neovim's `vim.lsp.completion`) ask
                // on identifier characters (Helix) or only on these (Neovim's autotrigger), so
                // these make them ask after punctuation too. Not " ": Helix asks at once after
                // every space and on entering insert mode after indentation, before anything is
                // typed, and Neovim on every space; editors/README.md has the table.
                trigger_characters: Some(
                    [".", "(", "[", "{", ",", ":", "="]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                ),
                ..Default::default()
            }),
            inline_completion_provider: Some(OneOf::Left(true)),
            workspace_symbol_provider: Some(OneOf::Left(true)),
            code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                code_action_kinds: Some(vec![
                    CodeActionKind::QUICKFIX,
                    CodeActionKind::REFACTOR_REWRITE,
                ]),
                resolve_provider: Some(true),
                ..Default::default()
            })),
            execute_command_provider: Some(ExecuteCommandOptions {
                commands: vec![
                    crate::feedback::ACCEPT_COMMAND.into(),
                    handlers::code_action::RUN_COMMAND.into(),
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        Ok(InitializeResult {
            capabilities,
            server_info: Some(ServerInfo {
                name: "moat".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.start_model_load();
        let root = self.roots.read().ok().and_then(|r| r.first().cloned());
        if let Some(root) = root
            && self.config().repo_context
        {
            self.workspace.start(
                PathBuf::from(root),
                self.client.clone(),
                self.progress_supported.load(Ordering::SeqCst),
            );
            if self.watch_registration_supported.load(Ordering::SeqCst) {
                let options = DidChangeWatchedFilesRegistrationOptions {
                    watchers: vec![FileSystemWatcher {
                        glob_pattern: GlobPattern::String("**/*".into()),
                        kind: None,
                    }],
                };
                let registration = Registration {
                    id: "moat-watch".into(),
                    method: "workspace/didChangeWatchedFiles".into(),
                    register_options: serde_json::to_value(options).ok(),
                };
                let client = self.client.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.register_capability(vec![registration]).await {
                        tracing::debug!("file watching not registered: {e}");
                    }
                });
            }
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        if let Some(path) = uri_path(params.text_document.uri.as_str()) {
            if crate::model_slot::is_workspace_config(&path) {
                self.workspace_config_changed();
            }
            self.workspace.file_changed(path, false);
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        for change in params.changes {
            if let Some(path) = uri_path(change.uri.as_str()) {
                if crate::model_slot::is_workspace_config(&path) {
                    self.workspace_config_changed();
                }
                self.workspace
                    .file_changed(path, change.typ == FileChangeType::DELETED);
            }
        }
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> RpcResult<Option<WorkspaceSymbolResponse>> {
        handlers::workspace_symbol::handle(self, params).await
    }

    async fn shutdown(&self) -> RpcResult<()> {
        self.shutdown_requested.store(true, Ordering::SeqCst);
        handlers::feedback::shutdown(self).await;
        // Requests still waiting (for the model, or on debounce) end now.
        self.scheduler.close();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let uri = params.text_document.uri.clone();
        handlers::document::did_open(self, params);
        crate::prefill::after_open(self, &uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri.clone();
        let changed = handlers::document::did_change(self, params);
        crate::prefill::after_change(self, &uri);
        if let Err(message) = changed {
            tracing::warn!("{message}");
            self.client
                .log_message(MessageType::WARNING, format!("moat: {message}"))
                .await;
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let key = params.text_document.uri.to_string();
        handlers::feedback::closed(self, &key);
        self.scheduler.forget(&key);
        self.docs.remove(&key);
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        self.apply_settings(&params.settings);
    }

    async fn code_action(&self, params: CodeActionParams) -> RpcResult<Option<CodeActionResponse>> {
        handlers::code_action::code_action(self, params).await
    }

    async fn code_action_resolve(&self, action: CodeAction) -> RpcResult<CodeAction> {
        handlers::code_action::resolve(self, action).await
    }

    async fn completion(&self, params: CompletionParams) -> RpcResult<Option<CompletionResponse>> {
        handlers::completion::handle(self, params).await
    }

    async fn execute_command(
        &self,
        params: ExecuteCommandParams,
    ) -> RpcResult<Option<serde_json::Value>> {
        match params.command.as_str() {
            handlers::code_action::RUN_COMMAND => {
                handlers::code_action::execute_command(self, &params).await
            }
            _ => handlers::feedback::execute_command(self, &params),
        }
    }
}
