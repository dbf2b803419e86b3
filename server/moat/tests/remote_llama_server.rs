//! The `[remote]` backend against a real OpenAI-compatible server: llama.cpp's `llama-server`
//! serving the GGUF that moat's default model was imported from. A manifest with only `[remote]`
//! (no `[onnx]`) goes through `moat complete` and through `moat serve` over LSP stdio.
//!
//! Runs only when both are set (otherwise it prints SKIP and passes, so CI without llama.cpp
//! stays green):
//! - `MOAT_LLAMA_SERVER`: a `llama-server` binary (`bench/scripts/build-llama-server.sh` builds
//!   one from the llama-cpp-python sdist on PyPI);
//! - `MOAT_REMOTE_GGUF`: the GGUF it serves, e.g.
//!   `~/.local/share/moat/downloads/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf`.
//!
//! The tokenizer, special tokens and FIM template come from an imported moat model of the same
//! weights: `MOAT_REMOTE_TOKENIZER_MODEL` (a folder with `model.toml` + `tokenizer.json`), else
//! the installed default (`$MOAT_HOME/models/default`). Optional `MOAT_LLAMA_SERVER_THREADS`
//! (default 2).
//!
//! See bench/README.md ("`[remote]` against llama-server").

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use moat_e2e::{Options, Server, end_position, inline_items};
use serde_json::Value;

/// Loading the GGUF and the first (cold) prompt on a busy 2-core machine.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(180);
/// One completion through the server (a cold prompt of a few hundred tokens on CPU).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

const FIXTURE: &str = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\ndef circle_circumference(radius):\n    ";

struct Setup {
    llama_server: PathBuf,
    gguf: PathBuf,
    tokenizer_model: PathBuf,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `<models dir>/default` (the data folder's, as the server finds it).
fn installed_default_model() -> Option<PathBuf> {
    Some(moat_model::models_dir()?.join("default"))
}

fn setup() -> Option<Setup> {
    let (Some(llama_server), Some(gguf)) =
        (env_path("MOAT_LLAMA_SERVER"), env_path("MOAT_REMOTE_GGUF"))
    else {
        eprintln!(
            "SKIP: set MOAT_LLAMA_SERVER (a llama-server binary; bench/scripts/build-llama-server.sh) \
             and MOAT_REMOTE_GGUF (the GGUF it serves) to test the [remote] backend against llama.cpp"
        );
        return None;
    };
    assert!(
        llama_server.is_file(),
        "MOAT_LLAMA_SERVER={} is not a file",
        llama_server.display()
    );
    assert!(
        gguf.is_file(),
        "MOAT_REMOTE_GGUF={} is not a file",
        gguf.display()
    );
    let tokenizer_model = env_path("MOAT_REMOTE_TOKENIZER_MODEL")
        .or_else(installed_default_model)
        .filter(|d| d.join("model.toml").is_file());
    let Some(tokenizer_model) = tokenizer_model else {
        panic!(
            "MOAT_LLAMA_SERVER and MOAT_REMOTE_GGUF are set, but no moat model of the same weights \
             was found for the tokenizer and FIM template: set MOAT_REMOTE_TOKENIZER_MODEL or \
             install the default model (scripts/setup.sh)"
        );
    };
    Some(Setup {
        llama_server,
        gguf,
        tokenizer_model,
    })
}

/// A folder under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("moat-remote-llama-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `[model]`, `[tokens]` and `[fim]` sections of `model_dir`'s manifest (without `onnx =`,
/// with the tokenizer as an absolute path) plus `[remote]` for `base_url`.
fn remote_manifest(model_dir: &Path, base_url: &str) -> String {
    let source = std::fs::read_to_string(model_dir.join("model.toml")).unwrap();
    let tokenizer = model_dir.canonicalize().unwrap().join("tokenizer.json");
    assert!(tokenizer.is_file(), "{} is missing", tokenizer.display());
    let mut out = String::new();
    let mut keep = false;
    for line in source.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
            let section = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
            keep = matches!(section, "model" | "tokens" | "fim");
        }
        if !keep {
            continue;
        }
        let key = trimmed.split('=').next().unwrap_or_default().trim();
        match key {
            "onnx" => continue,
            "tokenizer" => out.push_str(&format!(
                "tokenizer = {}\n",
                toml_string(&tokenizer.display().to_string())
            )),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str(&format!(
        "\n[remote]\nbase_url = {}\nmodel = \"llama-server\"\ntimeout_secs = {}\n",
        toml_string(base_url),
        REQUEST_TIMEOUT.as_secs()
    ));
    out
}

/// A TOML basic string (JSON's escaping is valid TOML for paths and URLs).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `llama-server`; killed on drop. Its output goes to `log`.
struct LlamaServer {
    child: Child,
    base_url: String,
    port: u16,
    log: PathBuf,
}

impl LlamaServer {
    fn start(setup: &Setup, dir: &Path) -> LlamaServer {
        let port = free_port();
        let log = dir.join("llama-server.log");
        let out = std::fs::File::create(&log).unwrap();
        let threads = std::env::var("MOAT_LLAMA_SERVER_THREADS").unwrap_or_else(|_| "2".into());
        let child = Command::new(&setup.llama_server)
            .arg("-m")
            .arg(&setup.gguf)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-t", &threads, "-c", "4096", "-np", "1"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", setup.llama_server.display()));
        let mut server = LlamaServer {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            log,
        };
        server.wait_healthy();
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `GET /health` until it answers 200 (503 while the model loads).
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "llama-server exited ({status}) before it was ready\n--- log ---\n{}",
                    self.log_text()
                );
            }
            if http_get_status(self.port, "/health") == Some(200) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "llama-server was not ready within {SERVER_START_TIMEOUT:?}\n--- log ---\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of `GET path` on 127.0.0.1:`port`, or `None` when nothing answers.
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line).ok()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}

fn moat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
    cmd.env_remove("MOAT_MODEL").env(
        "MOAT_LOG",
        std::env::var("MOAT_LOG").unwrap_or("info".into()),
    );
    cmd
}

/// The first line of a suggestion for the fixture's empty body.
fn assert_sensible(suggestion: &str, what: &str, log: &str) {
    let first = suggestion.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("return") && first.contains("math.pi") && first.contains("radius"),
        "{what}: not a sensible body for circle_circumference: {suggestion:?}\n--- llama-server log ---\n{log}"
    );
}

/// (1) `moat complete --model <remote manifest> FILE:LINE:COL`.
fn complete_from_the_cli(manifest_dir: &Path, dir: &Path, llama: &LlamaServer) {
    let file = dir.join("geometry.py");
    std::fs::write(&file, FIXTURE).unwrap();
    let line = FIXTURE.lines().count();
    let col = FIXTURE.rsplit('\n').next().unwrap().chars().count() + 1;
    let location = format!("{}:{line}:{col}", file.display());
    let started = Instant::now();
    let output = moat()
        .arg("complete")
        .arg("--model")
        .arg(manifest_dir)
        .arg(&location)
        .arg("--json")
        .output()
        .expect("cannot run moat complete");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "moat complete failed ({}):\n{}\n--- llama-server log ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        llama.log_text()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reply: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("moat complete --json printed no JSON ({e}): {stdout}"));
    let model = reply["model"].as_str().unwrap_or_default();
    assert!(
        model.contains("remote") && model.contains(&llama.base_url),
        "moat complete did not use the [remote] server: {reply}"
    );
    let suggestion = reply["suggestion"].as_str().unwrap_or_default();
    assert_sensible(suggestion, "moat complete", &llama.log_text());
    eprintln!(
        "moat complete via llama-server: {suggestion:?} ({} prompt tokens, {} generated, \
         {:.0} ms in the pipeline, {:.1} s for the process)",
        reply["prompt_tokens"],
        reply["generated_tokens"],
        reply["elapsed_ms"].as_f64().unwrap_or(0.0),
        elapsed.as_secs_f64()
    );
}

/// A minimal LSP client over `moat serve`'s stdio: `Content-Length` framing, server requests
/// answered with `null`.
fn inline_completion_over_lsp(manifest_dir: &Path, llama: &LlamaServer) {
    let mut server = Server::start_ready(&Options::default().model(manifest_dir));
    let uri = "file:///remote-llama/geometry.py";
    server.open(uri, "python", FIXTURE);
    let (line, character) = end_position(FIXTURE, "utf-16");
    let started = Instant::now();
    let id = server.send_inline(uri, line, character);
    let response = server.response_within(id, REQUEST_TIMEOUT);
    let elapsed = started.elapsed();
    let result = &response["result"];
    let items = inline_items(result);
    assert!(
        !items.is_empty(),
        "inlineCompletion returned no item: {response}\n--- moat serve stderr ---\n{}\n--- llama-server log ---\n{}",
        server.stderr_log(),
        llama.log_text()
    );
    let text = items[0]["insertText"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_sensible(&text, "moat serve", &llama.log_text());
    eprintln!(
        "moat serve via llama-server: inlineCompletion {text:?} in {:.0} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

#[test]
fn a_remote_manifest_completes_through_llama_server_from_the_cli_and_over_lsp() {
    let Some(setup) = setup() else { return };
    let scratch = Scratch::new();
    let llama = LlamaServer::start(&setup, &scratch.0);

    let manifest_dir = scratch.0.join("remote-model");
    std::fs::create_dir_all(&manifest_dir).unwrap();
    let manifest = remote_manifest(&setup.tokenizer_model, &llama.base_url);
    assert!(
        !manifest.contains("[onnx]") && manifest.contains("[remote]"),
        "{manifest}"
    );
    std::fs::write(manifest_dir.join("model.toml"), &manifest).unwrap();

    complete_from_the_cli(&manifest_dir, &scratch.0, &llama);
    inline_completion_over_lsp(&manifest_dir, &llama);

    // Both went to llama-server (it logs the timings of each completed task).
    let log = llama.log_text();
    let requests = log.matches("prompt eval time").count();
    assert!(
        requests >= 2,
        "llama-server saw {requests} completion requests, expected at least 2\n--- log ---\n{log}"
    );
}
