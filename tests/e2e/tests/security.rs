//! Planted secrets (issue 16): a workspace holding cloud keys, tokens, a private key and
//! passwords in secret files (`.env`, `id_rsa`) and in ordinary source files. The server indexes
//! it at `MOAT_LOG=debug` and serves completions through a `[remote]` model whose "server" is
//! this test (a loopback HTTP listener), so every prompt the server builds is seen verbatim.
//! No planted secret may appear in any prompt, in the debug log or in any LSP message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_e2e::{Options, Server, TempDir, json, model_dir};

/// The planted secrets: each must never leave the workspace's files.
const SECRETS: &[&str] = &[
    "AKIAQWERTYUIOPASDFGH",
    "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYzz",
    "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa",
    "hunter2-correct-horse-battery",
    "MIIEowIBAAKCAQEA7bq9secretkeybodyline",
    "xoxb-1234567890-abcdefghijklmnop",
];

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn planted_workspace() -> TempDir {
    let dir = TempDir::new("secrets-ws");
    let root = dir.path();
    write(
        root,
        ".env",
        &format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\nGITHUB_TOKEN={}\n",
            SECRETS[0], SECRETS[1], SECRETS[2]
        ),
    );
    write(
        root,
        "deploy/id_rsa",
        &format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
            SECRETS[5]
        ),
    );
    // Ordinary source files with secrets inside: indexed, redacted.
    write(
        root,
        "app/config.py",
        &format!(
            "import os\n\nOPENAI_API_KEY = \"{}\"\nDB_PASSWORD = \"{}\"\nSLACK_TOKEN = \"{}\"\n\n\
             def database_url(host):\n    return f\"postgres://admin:{}@{{host}}/main\"\n\n\
             def aws_client(region):\n    return connect(region, key=\"{}\", secret=\"{}\")\n",
            SECRETS[3], SECRETS[4], SECRETS[6], SECRETS[4], SECRETS[0], SECRETS[1]
        ),
    );
    write(
        root,
        "app/service.py",
        "from app.config import database_url, aws_client, OPENAI_API_KEY\n\n\
         def start(host, region):\n    url = database_url(host)\n    client = aws_client(region)\n    return url, client\n",
    );
    dir
}

/// A loopback "completion server" that records every request body.
fn recording_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let Ok(reader_stream) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(reader_stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            if let Ok(mut seen) = record.lock() {
                seen.push(String::from_utf8_lossy(&body).into_owned());
            }
            let reply = r#"{"choices":[{"text":"value)\n","finish_reason":"stop"}]}"#;
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (base, seen)
}

/// A model folder: tiny-llama's tokenizer and template, served by `base`.
fn remote_model(base: &str) -> TempDir {
    let dir = TempDir::new("remote-model");
    let src = std::fs::read_to_string(model_dir("tiny-llama").join("model.toml")).expect("toml");
    let head = &src[..src.find("[onnx]").expect("[onnx]")];
    let head = head.replace("onnx = \"model.onnx\"\n", "");
    std::fs::write(
        dir.path().join("model.toml"),
        format!("{head}[remote]\nbase_url = \"{base}\"\nmodel = \"planted\"\napi_key_env = \"MOAT_E2E_REMOTE_KEY\"\n"),
    )
    .expect("write toml");
    std::fs::copy(
        model_dir("tiny-llama").join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .expect("tokenizer");
    dir
}

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} holds the planted secret {secret}:\n{}",
            excerpt(text, secret)
        );
    }
}

fn excerpt(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text.floor_char_boundary(at.saturating_sub(300));
    let end = text.ceil_char_boundary((at + 300).min(text.len()));
    text[start..end].to_string()
}

#[test]
fn no_planted_secret_reaches_a_prompt_a_log_or_the_client() {
    // `Options::env` cannot override MOAT_LOG (the client passes the test's own on).
    // SAFETY: set before any thread of this test binary reads the environment for it; the one
    // test in this file.
    unsafe { std::env::set_var("MOAT_LOG", "debug") };
    let workspace = planted_workspace();
    let (base, prompts) = recording_server();
    let model = remote_model(&base);
    const API_KEY: &str = "moat-e2e-api-key-0123456789";
    let feedback = TempDir::new("secrets-feedback");
    let options = Options::default()
        .model(model.path())
        .root(workspace.path())
        .env("MOAT_FEEDBACK_DIR", feedback.path().display())
        .env("MOAT_E2E_REMOTE_KEY", API_KEY)
        .init_options(json!({ "debounceMs": 0, "repoContext": true, "feedbackSourceText": true }));
    let mut server = Server::start_ready(&options);
    // Wait for the index so that repository context is in every prompt.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match server.try_wait_for_notification("moat/status", Duration::from_secs(1)) {
            Some(status) if status["state"] == "indexed" => break,
            _ => {}
        }
    }
    let service = workspace.path().join("app/service.py");
    let uri = format!("file://{}", service.display());
    let text = std::fs::read_to_string(&service).expect("read");
    server.open(&uri, "python", &text);
    // Completions at the ends of the lines that use names from config.py, and on a new line.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let character = line.encode_utf16().count() as u32;
        server.inline(&uri, i as u32, character);
        server.completion(&uri, i as u32, character);
    }
    let mut typed = text.clone();
    typed.push_str("\ndef credentials():\n    return ");
    server.change(&uri, 2, json!([{ "text": typed }]));
    let last = typed.lines().count() as u32 - 1;
    server.inline(&uri, last, 11);
    // A workspace symbol query names the functions defined next to the secrets.
    let symbols = server.request("workspace/symbol", json!({ "query": "aws" }));
    assert!(
        symbols.to_string().contains("aws_client"),
        "the secret-bearing file is indexed: {symbols}"
    );
    let prompts_of_other_files = prompts.lock().expect("prompts").len();
    // Then the user edits the secret-bearing file itself: its own text is the prompt (that is
    // the file being completed), but the feedback records of what was shown there are redacted.
    let config = workspace.path().join("app/config.py");
    let config_uri = format!("file://{}", config.display());
    let config_text = std::fs::read_to_string(&config).expect("read");
    server.open(&config_uri, "python", &config_text);
    let config_lines: Vec<&str> = config_text.lines().collect();
    for (i, line) in config_lines.iter().enumerate() {
        server.inline(&config_uri, i as u32, line.encode_utf16().count() as u32);
    }
    // Typing on: the shown suggestions are decided (dismissed) and recorded.
    server.change(
        &config_uri,
        2,
        json!([{ "text": format!("{config_text}\n# end\n") }]),
    );
    server.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": config_uri } }),
    );
    server.shutdown_and_exit();

    let prompts: Vec<String> = prompts.lock().expect("prompts")[..prompts_of_other_files].to_vec();
    assert!(
        prompts.len() >= lines.len(),
        "the server asked the model: {prompts:?}"
    );
    let all_prompts = prompts.join("\n");
    assert!(
        all_prompts.contains("database_url") && all_prompts.contains("config.py"),
        "repository context from config.py is in the prompts: {}",
        &all_prompts[..all_prompts.len().min(2000)]
    );
    assert_clean("a prompt", &all_prompts);
    // The snippets from config.py came with their secrets blanked, not dropped.
    assert!(
        all_prompts.contains("<redacted>"),
        "{}",
        &all_prompts[..all_prompts.len().min(2000)]
    );
    let log = server.stderr_log();
    assert!(log.contains("DEBUG"), "the log is at debug level");
    assert_clean("the debug log", &log);
    assert!(!log.contains(API_KEY), "the API key is in the log");
    let messages: String = server.log.iter().map(|m| m.to_string()).collect();
    assert_clean("an LSP message", &messages);
    let mut records = String::new();
    for entry in walk(feedback.path()) {
        records.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry).expect("read"),
        ));
    }
    assert_clean("a feedback record", &records);
    eprintln!(
        "security: {} prompts, {} bytes of debug log, {} LSP messages, {} bytes of feedback \
         records checked; 0 of {} planted secrets found",
        prompts.len(),
        log.len(),
        server.log.len(),
        records.len(),
        SECRETS.len()
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `moat dataset build` on the planted workspace (a git repository): the fine-tuning data set
/// holds the code with every planted secret scrubbed, and no secret file at all.
#[test]
fn no_planted_secret_reaches_a_dataset() {
    let workspace = planted_workspace();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(workspace.path())
            .env("GIT_AUTHOR_NAME", "moat")
            .env("GIT_AUTHOR_EMAIL", "moat@example.com")
            .env("GIT_COMMITTER_NAME", "moat")
            .env("GIT_COMMITTER_EMAIL", "moat@example.com")
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "planted"]);
    let out = TempDir::new("secrets-dataset");
    let dataset = out.path().join("ds");
    let output = std::process::Command::new(moat_e2e::moat_binary())
        .args(["dataset", "build"])
        .arg(workspace.path())
        .arg("--out")
        .arg(&dataset)
        .arg("--base")
        .arg(model_dir("tiny-llama"))
        .args(["--heldout", "0"])
        .env("MOAT_LOG", "debug")
        .output()
        .expect("moat dataset build");
    let log = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    if !output.status.success() && std::env::var_os("MOAT_REQUIRE_TRAINING_STACK").is_none() {
        // Without the model pipeline's Python (model-assets/train/.venv) there is no build.
        eprintln!("skipped: moat dataset build does not run here:\n{log}");
        return;
    }
    assert!(output.status.success(), "{log}");
    // Samples are token ids: decode them with the base model's tokenizer.
    let manifest = moat_model::Manifest::load(&model_dir("tiny-llama")).expect("manifest");
    let tokenizer =
        moat_model::ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).expect("tokenizer");
    let mut written = String::new();
    for file in walk(&dataset) {
        let text = String::from_utf8_lossy(&std::fs::read(file).expect("read")).into_owned();
        for line in text.lines() {
            if let Ok(record) = serde_json::from_str::<moat_e2e::Value>(line)
                && let Some(ids) = record["ids"].as_array()
            {
                let ids: Vec<u32> = ids
                    .iter()
                    .filter_map(|i| i.as_u64())
                    .map(|i| i as u32)
                    .collect();
                written.push_str(&String::from_utf8_lossy(&tokenizer.decode_bytes(&ids)));
                written.push('\n');
            }
        }
        written.push_str(&text);
    }
    assert!(
        written.contains("database_url"),
        "the code is in the data set"
    );
    assert!(
        written.contains("<redacted>"),
        "its secrets were scrubbed, not the file dropped"
    );
    assert_clean("the data set", &written);
    assert_clean("dataset build's output", &log);
    eprintln!(
        "security: data set of {} bytes checked; 0 of {} planted secrets found",
        written.len(),
        SECRETS.len()
    );
}
