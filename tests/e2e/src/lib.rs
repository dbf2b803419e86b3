//! A small LSP client for moat's end-to-end tests: it starts the real `moat serve` binary, speaks
//! JSON-RPC over its stdin/stdout with `Content-Length` framing, answers the server's own requests
//! (`window/workDoneProgress/create`, `client/registerCapability`, ...) with `null`, and keeps the
//! server's stderr for diagnostics (printed when a test fails).
//!
//! Every wait has a deadline ([`TIMEOUT`]): a test fails, it never hangs.
//!
//! The binary is not built by this crate: run `cargo build -p moat` before `cargo test`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use serde_json::{Value, json};

/// The longest any single wait may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// JSON-RPC / LSP error codes the tests check.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const REQUEST_CANCELLED: i64 = -32800;
}

/// The workspace root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

/// `model-assets/<name>`.
pub fn model_dir(name: &str) -> PathBuf {
    repo_root().join("model-assets").join(name)
}

/// The `moat` binary: `MOAT_BIN` if set, else `moat` in the same target profile folder as this
/// test executable (which honours `CARGO_TARGET_DIR` and `--release`), else
/// `$CARGO_TARGET_DIR/debug/moat`, else `<workspace>/target/debug/moat`.
pub fn moat_binary() -> PathBuf {
    let exe_name = format!("moat{}", std::env::consts::EXE_SUFFIX);
    if let Some(p) = std::env::var_os("MOAT_BIN") {
        return PathBuf::from(p);
    }
    let mut candidates = Vec::new();
    // target/<profile>/deps/<test-exe> -> target/<profile>/moat
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join(&exe_name));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug").join(&exe_name));
    }
    if let Some(dir) = option_env!("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug").join(&exe_name));
    }
    candidates.push(repo_root().join("target/debug").join(&exe_name));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return found.clone();
    }
    panic!(
        "the moat binary was not found (looked at {}).\n\
         The end-to-end tests run the real server: build it first with\n\
         \n    cargo build -p moat && cargo test --workspace\n\n\
         (use `cargo build -p moat --release` for `cargo test --release`, or set MOAT_BIN).",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// How to start and initialize the server.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--model`; `None` passes no flag (and clears `MOAT_MODEL`).
    pub model: Option<PathBuf>,
    /// `capabilities.general.positionEncodings`; `None` leaves `general` out.
    pub position_encodings: Option<Vec<String>>,
    /// `initializationOptions`.
    pub init_options: Value,
    /// `rootUri` (a workspace to index); `None` sends null.
    pub root: Option<PathBuf>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// `clientInfo.name` (default `moat-e2e`).
    pub client_name: String,
    /// `textDocument.completion.completionItem.snippetSupport`.
    pub snippet_support: bool,
    /// `textDocument.codeAction.resolveSupport` for `edit` (true by default).
    pub code_action_resolve: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            model: Some(model_dir("tiny-llama")),
            position_encodings: Some(vec!["utf-16".into()]),
            init_options: json!({ "debounceMs": 0 }),
            root: None,
            env: Vec::new(),
            client_name: "moat-e2e".into(),
            snippet_support: false,
            code_action_resolve: true,
        }
    }
}

impl Options {
    pub fn model(mut self, path: impl Into<PathBuf>) -> Self {
        self.model = Some(path.into());
        self
    }

    pub fn encodings(mut self, encodings: &[&str]) -> Self {
        self.position_encodings = Some(encodings.iter().map(|s| s.to_string()).collect());
        self
    }

    pub fn no_encodings(mut self) -> Self {
        self.position_encodings = None;
        self
    }

    pub fn init_options(mut self, value: Value) -> Self {
        self.init_options = value;
        self
    }

    /// An environment variable for the server process.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Loading the model takes `ms` milliseconds longer (the server's test-only
    /// `MOAT_TEST_LOAD_DELAY_MS`), as a big model's would.
    pub fn load_delay_ms(self, ms: u64) -> Self {
        self.env("MOAT_TEST_LOAD_DELAY_MS", ms)
    }

    /// Introduce the client as `name`, with or without snippet support in completion items.
    pub fn client(mut self, name: &str, snippet_support: bool) -> Self {
        self.client_name = name.to_string();
        self.snippet_support = snippet_support;
        self
    }

    /// A client that cannot resolve code actions (no `codeAction.resolveSupport`).
    pub fn without_code_action_resolve(mut self) -> Self {
        self.code_action_resolve = false;
        self
    }

    /// A workspace folder: the server indexes it.
    pub fn root(mut self, path: impl Into<PathBuf>) -> Self {
        self.root = Some(path.into());
        self
    }
}

type Shared<T> = Arc<Mutex<T>>;

/// A running `moat serve` and the client side of its connection.
pub struct Server {
    child: Child,
    stdin: Shared<Option<ChildStdin>>,
    incoming: Receiver<Value>,
    /// Responses that arrived but were not asked for yet, by `id` as JSON text.
    responses: HashMap<String, Value>,
    /// Notifications and server requests not consumed yet, in arrival order.
    pending: VecDeque<Value>,
    /// Every message from the server, in arrival order.
    pub log: Vec<Value>,
    stderr: Shared<String>,
    next_id: i64,
    /// The `initialize` result (`Value::Null` before `initialize`).
    pub init_result: Value,
    disconnected: bool,
}

fn write_frame(out: &mut impl Write, body: &[u8]) -> std::io::Result<()> {
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(body);
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one `Content-Length` framed message; `None` at end of input.
fn read_frame(input: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            if length.is_some() {
                break;
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    input.read_exact(&mut body).ok()?;
    Some(body)
}

fn reader_thread(
    stdout: impl Read + Send + 'static,
    stdin: Shared<Option<ChildStdin>>,
    tx: Sender<Value>,
) {
    std::thread::spawn(move || {
        let mut input = BufReader::new(stdout);
        while let Some(body) = read_frame(&mut input) {
            let message: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => json!({
                    "invalid": String::from_utf8_lossy(&body),
                    "error": e.to_string(),
                }),
            };
            // A request from the server: answer at once so it never waits on the test (an edit
            // is applied: the test reads it from the log).
            if let Some(method) = message.get("method")
                && let Some(id) = message.get("id")
            {
                let result = if method == "workspace/applyEdit" {
                    json!({ "applied": true })
                } else {
                    Value::Null
                };
                let reply = json!({ "jsonrpc": "2.0", "id": id, "result": result });
                if let Ok(mut guard) = stdin.lock()
                    && let Some(w) = guard.as_mut()
                {
                    let _ = write_frame(w, reply.to_string().as_bytes());
                }
            }
            if tx.send(message).is_err() {
                break;
            }
        }
    });
}

fn stderr_thread(stderr: impl Read + Send + 'static, log: Shared<String>) {
    std::thread::spawn(move || {
        let mut input = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(mut log) = log.lock() {
                        log.push_str(&line);
                    }
                }
            }
        }
    });
}

impl Server {
    /// Starts `moat serve` without initializing it.
    pub fn spawn(options: &Options) -> Server {
        let bin = moat_binary();
        let mut cmd = Command::new(&bin);
        cmd.arg("serve");
        if let Some(model) = &options.model {
            cmd.arg("--model").arg(model);
        }
        cmd.env_remove("MOAT_MODEL")
            .env_remove("MOAT_TEST_LOAD_DELAY_MS");
        // Feedback goes only where a test names a folder (MOAT_FEEDBACK_DIR), never into the
        // user's data folder.
        if !options.env.iter().any(|(k, _)| k == "MOAT_FEEDBACK_DIR") {
            cmd.env("MOAT_FEEDBACK", "0");
        }
        for (key, value) in &options.env {
            cmd.env(key, value);
        }
        cmd.env(
            "MOAT_LOG",
            std::env::var("MOAT_LOG").unwrap_or("info".into()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = channel();
        reader_thread(child.stdout.take().expect("stdout"), stdin.clone(), tx);
        stderr_thread(child.stderr.take().expect("stderr"), stderr.clone());
        Server {
            child,
            stdin,
            incoming: rx,
            responses: HashMap::new(),
            pending: VecDeque::new(),
            log: Vec::new(),
            stderr,
            next_id: 1,
            init_result: Value::Null,
            disconnected: false,
        }
    }

    /// Starts, sends `initialize` and `initialized`; does not wait for the model.
    pub fn start(options: &Options) -> Server {
        let mut server = Server::spawn(options);
        server.initialize(options);
        server
    }

    /// Starts and waits until `moat/status` says the model is ready.
    pub fn start_ready(options: &Options) -> Server {
        let mut server = Server::start(options);
        let status = server.wait_for_status();
        assert_eq!(
            status["state"],
            "ready",
            "the model did not load: {status}\n{}",
            server.stderr_log()
        );
        server
    }

    /// `initialize` + `initialized`; returns the `initialize` result.
    pub fn initialize(&mut self, options: &Options) -> Value {
        let mut capabilities = json!({
            "textDocument": {
                "completion": { "completionItem": { "snippetSupport": options.snippet_support } },
                "inlineCompletion": {},
                "codeAction": if options.code_action_resolve {
                    json!({ "dataSupport": true, "resolveSupport": { "properties": ["edit"] } })
                } else {
                    json!({})
                },
                "synchronization": { "didSave": false }
            },
            "window": { "workDoneProgress": true, "showMessage": {} },
            "workspace": { "applyEdit": true, "configuration": true, "didChangeConfiguration": { "dynamicRegistration": true } }
        });
        if let Some(encodings) = &options.position_encodings {
            capabilities["general"] = json!({ "positionEncodings": encodings });
        }
        let params = json!({
            "processId": std::process::id(),
            "clientInfo": { "name": options.client_name },
            "rootUri": options.root.as_ref().map(|p| format!("file://{}", p.display())),
            "capabilities": capabilities,
            "initializationOptions": options.init_options,
        });
        let result = self.request("initialize", params);
        self.notify("initialized", json!({}));
        self.init_result = result.clone();
        result
    }

    /// The server's stderr so far.
    pub fn stderr_log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Writes bytes to the server's stdin as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut guard = self.stdin.lock().expect("stdin lock");
        let w = guard.as_mut().expect("stdin is closed");
        w.write_all(bytes)
            .and_then(|()| w.flush())
            .unwrap_or_else(|e| panic!("cannot write to the server: {e}"));
    }

    /// Sends `body` (any bytes) with correct `Content-Length` framing.
    pub fn send_body(&mut self, body: &[u8]) {
        let mut guard = self.stdin.lock().expect("stdin lock");
        let w = guard.as_mut().expect("stdin is closed");
        write_frame(w, body).unwrap_or_else(|e| panic!("cannot write to the server: {e}"));
    }

    fn send(&mut self, message: &Value) {
        self.send_body(message.to_string().as_bytes());
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its id without waiting.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Closes the server's stdin.
    pub fn close_stdin(&mut self) {
        if let Ok(mut guard) = self.stdin.lock() {
            guard.take();
        }
    }

    fn file(&mut self, message: Value) {
        self.log.push(message.clone());
        if message.get("method").is_some() {
            self.pending.push_back(message);
        } else if let Some(id) = message.get("id") {
            self.responses.insert(id.to_string(), message);
        } else {
            // Unparseable output: keep it where a test can see it.
            self.pending.push_back(message);
        }
    }

    /// Takes in one message from the server, waiting until `deadline`. False on timeout or when
    /// the server closed its stdout.
    fn pump(&mut self, deadline: Instant) -> bool {
        if self.disconnected {
            return false;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(wait) {
            Ok(message) => {
                self.file(message);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                self.disconnected = true;
                false
            }
        }
    }

    /// Takes in everything the server has sent so far (without waiting).
    pub fn drain(&mut self) {
        while let Ok(message) = self.incoming.try_recv() {
            self.file(message);
        }
    }

    /// Waits for the response to request `id`: the whole message (`result` or `error`).
    pub fn response(&mut self, id: i64) -> Value {
        self.response_within(id, TIMEOUT)
    }

    pub fn response_within(&mut self, id: i64, timeout: Duration) -> Value {
        let key = json!(id).to_string();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(message) = self.responses.remove(&key) {
                return message;
            }
            if !self.pump(deadline) {
                panic!(
                    "no response to request {id} within {timeout:?} (server {})\n--- stderr ---\n{}",
                    if self.disconnected {
                        "closed its output"
                    } else {
                        "still running"
                    },
                    self.stderr_log()
                );
            }
        }
    }

    /// A response with `id: null` (what JSON-RPC sends for unparseable input), if one arrives
    /// within `timeout`.
    pub fn null_id_response(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(message) = self.responses.remove("null") {
                return Some(message);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// Sends a request and returns its `result`; panics on an error response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        let response = self.response(id);
        match response.get("result") {
            Some(result) if response.get("error").is_none() => result.clone(),
            _ => panic!("{method} failed: {response}"),
        }
    }

    /// Sends a request and returns its `error` object; panics on a result.
    pub fn request_error(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        let response = self.response(id);
        match response.get("error") {
            Some(error) => error.clone(),
            None => panic!("{method} was expected to fail, got {response}"),
        }
    }

    /// Waits for a notification (or server request) `method`, removes it from the queue and
    /// returns its `params`.
    pub fn wait_for_notification(&mut self, method: &str) -> Value {
        self.try_wait_for_notification(method, TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "no {method} notification within {TIMEOUT:?}; got {:?}\n--- stderr ---\n{}",
                    self.pending
                        .iter()
                        .map(|m| m["method"].to_string())
                        .collect::<Vec<_>>(),
                    self.stderr_log()
                )
            })
    }

    pub fn try_wait_for_notification(&mut self, method: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(|m| m["method"] == method) {
                let message = self.pending.remove(i)?;
                return Some(message.get("params").cloned().unwrap_or(Value::Null));
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// Waits for a `moat/status` notification whose state is final (`ready` or `error`); skips
    /// `loading`.
    pub fn wait_for_status(&mut self) -> Value {
        loop {
            let status = self.wait_for_notification("moat/status");
            if status["state"] == "ready" || status["state"] == "error" {
                return status;
            }
        }
    }

    /// Waits for the process to end.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => panic!(
                    "the server did not exit within {timeout:?}\n--- stderr ---\n{}",
                    self.stderr_log()
                ),
                Err(e) => panic!("cannot wait for the server: {e}"),
            }
        }
    }

    /// The server's process id (for `/proc/PID/status` and `/proc/PID/fd`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `shutdown` then `exit`; returns the exit status.
    pub fn shutdown_and_exit(&mut self) -> ExitStatus {
        let result = self.request("shutdown", Value::Null);
        assert_eq!(result, Value::Null, "shutdown result");
        self.notify("exit", Value::Null);
        self.wait_exit(TIMEOUT)
    }

    // ---- documents ----

    pub fn open(&mut self, uri: &str, language_id: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": {
                "uri": uri, "languageId": language_id, "version": 1, "text": text
            }}),
        );
    }

    /// `didChange` with the given `contentChanges`.
    pub fn change(&mut self, uri: &str, version: i64, changes: Value) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": changes }),
        );
    }

    /// Sends `textDocument/inlineCompletion` (invoked) without waiting; returns the request id.
    pub fn send_inline(&mut self, uri: &str, line: u32, character: u32) -> i64 {
        self.send_request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": { "uri": uri },
                "position": { "line": line, "character": character },
                "context": { "triggerKind": 1 }
            }),
        )
    }

    /// `textDocument/inlineCompletion` (automatic trigger), the result.
    pub fn inline(&mut self, uri: &str, line: u32, character: u32) -> Value {
        self.request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": { "uri": uri },
                "position": { "line": line, "character": character },
                "context": { "triggerKind": 2 }
            }),
        )
    }

    /// `textDocument/completion` (invoked), the result.
    pub fn completion(&mut self, uri: &str, line: u32, character: u32) -> Value {
        let id = self.send_completion(uri, line, character);
        let response = self.response(id);
        match response.get("result") {
            Some(result) if response.get("error").is_none() => result.clone(),
            _ => panic!("textDocument/completion failed: {response}"),
        }
    }

    /// Sends `textDocument/completion` (invoked) without waiting; returns the request id.
    pub fn send_completion(&mut self, uri: &str, line: u32, character: u32) -> i64 {
        self.send_request(
            "textDocument/completion",
            json!({
                "textDocument": { "uri": uri },
                "position": { "line": line, "character": character },
                "context": { "triggerKind": 1 }
            }),
        )
    }

    /// Types `text` (one line) at `line:character` (UTF-16) as one `didChange` per character,
    /// starting at document version `version`; returns the last version sent.
    pub fn type_at(
        &mut self,
        uri: &str,
        version: i64,
        line: u32,
        character: u32,
        text: &str,
    ) -> i64 {
        let mut version = version;
        let mut character = character;
        for c in text.chars() {
            let at = json!({ "line": line, "character": character });
            version += 1;
            self.change(
                uri,
                version,
                json!([{ "range": { "start": at, "end": at }, "text": c.to_string() }]),
            );
            character += c.len_utf16() as u32;
        }
        version
    }

    /// The inline suggestion's text, `None` when the list is empty.
    pub fn inline_text(&mut self, uri: &str, line: u32, character: u32) -> Option<String> {
        let result = self.inline(uri, line, character);
        inline_items(&result)
            .first()
            .map(|item| item["insertText"].as_str().unwrap_or_default().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.drain();
            eprintln!(
                "--- moat stderr ---\n{}--- last messages from moat ---",
                self.stderr_log()
            );
            for m in self.log.iter().rev().take(10).rev() {
                let mut text = m.to_string();
                text.truncate(500);
                eprintln!("{text}");
            }
        }
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The items of an `InlineCompletionList` (or of a bare item array).
pub fn inline_items(result: &Value) -> Vec<Value> {
    let items = if result.is_array() {
        result
    } else {
        &result["items"]
    };
    items.as_array().cloned().unwrap_or_default()
}

/// The items of a `CompletionList` (or of a bare item array).
pub fn completion_items(result: &Value) -> Vec<Value> {
    inline_items(result)
}

/// What a completion request under load was answered with: `"cancelled"` (-32800, the only
/// error allowed), `"empty"` or `"suggestion"`. Panics on any other error.
pub fn answer_kind(response: &Value) -> &'static str {
    if let Some(error) = response.get("error") {
        assert_eq!(
            error["code"], -32800,
            "an error other than cancelled: {response}"
        );
        return "cancelled";
    }
    let items = response["result"]["items"].as_array().map_or(0, Vec::len);
    if items == 0 { "empty" } else { "suggestion" }
}

/// The `p` quantile (0..=1, nearest rank) of `sorted` durations; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// The position at the end of `text` with `character` in `encoding` code units
/// (`"utf-8"`, `"utf-16"` or `"utf-32"`).
pub fn end_position(text: &str, encoding: &str) -> (u32, u32) {
    let line = text.matches('\n').count() as u32;
    let last = text.rsplit('\n').next().unwrap_or_default();
    let character = match encoding {
        "utf-8" => last.len(),
        "utf-16" => last.encode_utf16().count(),
        "utf-32" => last.chars().count(),
        other => panic!("unknown encoding {other}"),
    };
    (line, character as u32)
}

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "moat-e2e-{tag}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A copy of `model-assets/<name>` in a new temp dir.
    pub fn with_model_copy(name: &str) -> TempDir {
        let dir = TempDir::new(name);
        let src = model_dir(name);
        for entry in std::fs::read_dir(&src).expect("model folder") {
            let entry = entry.expect("dir entry");
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::copy(entry.path(), dir.path().join(entry.file_name()))
                    .expect("copy model file");
            }
        }
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Python file most tests complete in, and where.
pub mod fixture {
    pub const PY_URI: &str = "file:///e2e/project/read.py";
    /// The cursor is at the end, after `f.re`.
    pub const PY_TEXT: &str =
        "import os\n\ndef read_file(path):\n    with open(path) as f:\n        return f.re";
    /// The word before the cursor.
    pub const PY_WORD: &str = "re";
}

/// Byte offset of an LSP position (UTF-16 `character`) in `text`.
pub fn offset_utf16(text: &str, line: u32, character: u32) -> usize {
    let mut start = 0;
    for _ in 0..line {
        start += text[start..].find('\n').expect("line in range") + 1;
    }
    let line_text = text[start..].split('\n').next().unwrap_or_default();
    let mut units = 0;
    for (i, c) in line_text.char_indices() {
        if units >= character {
            return start + i;
        }
        units += c.len_utf16() as u32;
    }
    start + line_text.len()
}

/// `text` with a `TextEdit` (`{range, newText}`, UTF-16 positions) applied.
pub fn apply_edit(text: &str, edit: &Value) -> String {
    let position = |p: &Value| {
        offset_utf16(
            text,
            p["line"].as_u64().expect("line") as u32,
            p["character"].as_u64().expect("character") as u32,
        )
    };
    let start = position(&edit["range"]["start"]);
    let end = position(&edit["range"]["end"]);
    let new_text = edit["newText"].as_str().expect("newText");
    format!("{}{}{}", &text[..start], new_text, &text[end..])
}
