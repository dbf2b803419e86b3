//! Code actions that write code, over LSP with the real binary: offered where the shape fits,
//! computed on `codeAction/resolve`, applied as a `WorkspaceEdit` that parses, or refused with a
//! `window/showMessage` and no edit. The tiny test model (fixed output) shows the protocol and
//! the refusals; the default model (Qwen2.5-Coder-0.5B-Instruct) shows that a simple body is
//! filled sensibly.

use moat_e2e::{Options, Server, TempDir, end_position};
use moat_syntax::{Language, SyntaxTree};
use serde_json::{Value, json};

fn position_of(text: &str, needle: &str) -> (u32, u32) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in fixture"));
    end_position(&text[..at], "utf-16")
}

fn range(l1: u32, c1: u32, l2: u32, c2: u32) -> Value {
    json!({ "start": { "line": l1, "character": c1 }, "end": { "line": l2, "character": c2 } })
}

fn code_actions(server: &mut Server, uri: &str, at: (u32, u32), diagnostics: Value) -> Vec<Value> {
    let result = server.request(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": uri },
            "range": range(at.0, at.1, at.0, at.1),
            "context": { "diagnostics": diagnostics }
        }),
    );
    result.as_array().cloned().unwrap_or_default()
}

fn titled<'a>(actions: &'a [Value], words: &str) -> &'a Value {
    actions
        .iter()
        .find(|a| a["title"].as_str().is_some_and(|t| t.contains(words)))
        .unwrap_or_else(|| panic!("no action {words:?} in {actions:#?}"))
}

/// Applies LSP text edits (UTF-16 positions; the fixtures are ASCII) to `text`.
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap() as usize;
        let character = p["character"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        start + character
    };
    let mut edits: Vec<&Value> = edits.iter().collect();
    edits.sort_by_key(|e| std::cmp::Reverse(offset(&e["range"]["start"])));
    let mut out = text.to_string();
    for e in edits {
        let (s, t) = (offset(&e["range"]["start"]), offset(&e["range"]["end"]));
        out.replace_range(s..t, e["newText"].as_str().unwrap());
    }
    out
}

fn syntax_errors(language: Language, text: &str) -> usize {
    SyntaxTree::parse(language, text)
        .expect("parses")
        .error_count_in(0..text.len())
}

/// What a resolved action did: the document's text after its edit, or the message that said
/// why there is none.
enum Outcome {
    Edited(String),
    Refused(String),
}

/// A resolve answer; the default model may write for a while on a shared machine.
fn resolve_request(server: &mut Server, action: &Value) -> Value {
    let id = server.send_request("codeAction/resolve", action.clone());
    let response = server.response_within(id, std::time::Duration::from_secs(120));
    response
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{response}"))
}

fn resolve(server: &mut Server, action: &Value, uri: &str, text: &str) -> Outcome {
    let resolved = resolve_request(server, action);
    match resolved.get("edit") {
        Some(edit) => {
            let edits = edit["changes"][uri]
                .as_array()
                .unwrap_or_else(|| panic!("edits of {uri}: {resolved}"));
            let new = apply(text, edits);
            eprintln!("--- {}:\n{new}", action["title"]);
            Outcome::Edited(new)
        }
        None => {
            let message = server.wait_for_notification("window/showMessage");
            eprintln!("--- {}: refused: {message}", action["title"]);
            Outcome::Refused(message["message"].as_str().unwrap_or_default().to_string())
        }
    }
}

const PY_URI: &str = "file:///e2e/actions/shapes.py";
const PY: &str = "def area(width, height):\n    \"\"\"Width times height.\"\"\"\n    pass\n\n\ndef perimeter(width, height):\n    return 2 * (width + height)\n";
const RS_URI: &str = "file:///e2e/actions/shapes.rs";
const RS: &str = "pub fn area(width: u32, height: u32) -> u32 {\n    todo!()\n}\n\npub fn perimeter(width: u32, height: u32) -> u32 {\n    2 * (width + height)\n}\n";
const TS_URI: &str = "file:///e2e/actions/shapes.ts";
const TS: &str = "export function area(width: number, height: number): number {\n  throw new Error(\"not implemented\");\n}\n\nexport function perimeter(width: number, height: number): number {\n  return 2 * (width + height);\n}\n";

#[test]
fn each_action_is_offered_where_its_shape_is_and_resolves_to_a_parsing_edit_or_a_refusal() {
    let mut server = Server::start_ready(&Options::default());
    let caps = &server.init_result["capabilities"]["codeActionProvider"];
    assert_eq!(caps["resolveProvider"], true, "{caps}");

    for (uri, id, text, language, stub) in [
        (PY_URI, "python", PY, Language::Python, "pass"),
        (RS_URI, "rust", RS, Language::Rust, "todo!()"),
        (TS_URI, "typescript", TS, Language::TypeScript, "throw new"),
    ] {
        server.open(uri, id, text);
        // On the stub: fill the body (and the doc comment where there is none).
        let actions = code_actions(&mut server, uri, position_of(text, stub), json!([]));
        let fill = titled(&actions, "fill the body of `area`");
        assert!(fill.get("edit").is_none(), "computed lazily: {fill}");
        assert!(fill.get("command").is_none(), "the client resolves: {fill}");
        assert_eq!(fill["kind"], "refactor.rewrite");
        if language != Language::Python {
            titled(&actions, "write the doc comment of `area`");
        }
        // On a written function: a doc comment and a test, no body to fill.
        let actions = code_actions(&mut server, uri, position_of(text, "2 * ("), json!([]));
        assert!(
            actions
                .iter()
                .all(|a| !a["title"].as_str().unwrap().contains("fill")),
            "{actions:#?}"
        );
        titled(&actions, "write the doc comment of `perimeter`");
        titled(&actions, "write a test for `perimeter`");

        for action in [
            fill.clone(),
            titled(&actions, "write the doc comment of `perimeter`").clone(),
        ] {
            match resolve(&mut server, &action, uri, text) {
                Outcome::Edited(new) => {
                    assert_ne!(new, text);
                    assert_eq!(
                        syntax_errors(language, &new),
                        0,
                        "{}: the edit must parse:\n{new}",
                        action["title"]
                    );
                }
                Outcome::Refused(message) => {
                    assert!(
                        message.starts_with("moat: ") && message.len() > 20,
                        "a clear message: {message}"
                    );
                }
            }
        }
    }
    // Progress was reported for the resolves (the client said it supports it).
    server.drain();
    let progress: Vec<&Value> = server
        .log
        .iter()
        .filter(|m| m["method"] == "$/progress")
        .filter(|m| {
            m["params"]["token"]
                .as_str()
                .is_some_and(|t| t.starts_with("moat/codeAction"))
        })
        .collect();
    assert!(
        progress
            .iter()
            .any(|m| m["params"]["value"]["kind"] == "begin")
            && progress
                .iter()
                .any(|m| m["params"]["value"]["kind"] == "end"),
        "{progress:#?}"
    );
    assert!(server.shutdown_and_exit().success());
}

const FIX_URI: &str = "file:///e2e/actions/fix.py";
const FIX: &str = "def total(prices):\n    result = 0\n    for p in prices:\n        result += pric\n    return result\n";

/// Opens [`FIX`] and asks for actions at its undefined name, with the diagnostic another
/// server (`source`) reports there.
fn open_with_diagnostic(server: &mut Server, source: Option<&str>) -> Vec<Value> {
    server.open(FIX_URI, "python", FIX);
    let (line, character) = position_of(FIX, "pric\n");
    let mut diagnostic = json!({
        "range": range(line, character, line, character + 4),
        "message": "\"pric\" is not defined",
    });
    if let Some(source) = source {
        diagnostic["source"] = json!(source);
        diagnostic["severity"] = json!(1);
    }
    code_actions(server, FIX_URI, (line, character), json!([diagnostic]))
}

#[test]
fn a_diagnostic_from_another_server_is_offered_as_a_quick_fix() {
    let mut server = Server::start_ready(&Options::default());
    let (uri, text) = (FIX_URI, FIX);
    let actions = open_with_diagnostic(&mut server, Some("Pyright"));
    let fix = titled(&actions, "fix: \"pric\" is not defined");
    assert_eq!(fix["kind"], "quickfix");
    assert_eq!(fix["diagnostics"][0]["source"], "Pyright");
    match resolve(&mut server, fix, uri, text) {
        Outcome::Edited(new) => {
            assert_eq!(syntax_errors(Language::Python, &new), 0, "{new}");
            // Only the statement changed.
            assert!(new.starts_with("def total(prices):\n    result = 0\n    for p in prices:\n"));
        }
        Outcome::Refused(message) => assert!(message.contains("fix"), "{message}"),
    }
}

/// A workspace with a module and its test file; asks for a test of `square` and returns the
/// test file after the edit (or the refusal).
fn write_a_test(options: Options) -> Outcome {
    let dir = TempDir::new("actions-test");
    let root = dir.path();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    let tests = "from shapes import area\n\n\ndef test_area():\n    assert area(2, 3) == 6\n";
    std::fs::write(root.join("tests/test_shapes.py"), tests).unwrap();
    let source = "def area(width, height):\n    return width * height\n\n\ndef square(side):\n    return area(side, side)\n";
    std::fs::write(root.join("shapes.py"), source).unwrap();
    let mut server = Server::start_ready(&options.root(root));
    let uri = format!("file://{}/shapes.py", root.display());
    server.open(&uri, "python", source);
    let actions = code_actions(
        &mut server,
        &uri,
        position_of(source, "area(side"),
        json!([]),
    );
    let action = titled(&actions, "write a test for `square`");
    let resolved = resolve_request(&mut server, action);
    let test_uri = format!("file://{}/tests/test_shapes.py", root.display());
    match resolved.get("edit") {
        Some(edit) => {
            let edits = edit["changes"][&test_uri]
                .as_array()
                .unwrap_or_else(|| panic!("an edit of the test file: {resolved}"));
            let new = apply(tests, edits);
            eprintln!("--- test:\n{new}");
            assert!(new.contains("\ndef test_square"), "{new}");
            assert!(new.contains("from shapes import square"), "{new}");
            assert_eq!(syntax_errors(Language::Python, &new), 0, "{new}");
            Outcome::Edited(new)
        }
        None => {
            let message = server.wait_for_notification("window/showMessage");
            let message = message["message"].as_str().unwrap_or_default().to_string();
            eprintln!("--- test: refused: {message}\n{}", server.stderr_log());
            assert!(message.contains("test"), "{message}");
            Outcome::Refused(message)
        }
    }
}

#[test]
fn a_test_follows_the_repository_test_file() {
    write_a_test(Options::default());
}

#[test]
fn bad_input_changes_nothing_and_the_server_keeps_serving() {
    let mut server = Server::start(&Options::default().load_delay_ms(1500));
    server.open(PY_URI, "python", PY);
    let stub = position_of(PY, "pass");

    // A range outside the document: an error that says so.
    let error = server.request_error(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": PY_URI },
            "range": range(400, 0, 400, 3),
            "context": { "diagnostics": [] }
        }),
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("outside the document"),
        "{error}"
    );

    // Cancelled halfway (here: while it waits for the loading model): no edit.
    let actions = code_actions(&mut server, PY_URI, stub, json!([]));
    let fill = titled(&actions, "fill the body").clone();
    let id = server.send_request("codeAction/resolve", fill.clone());
    std::thread::sleep(std::time::Duration::from_millis(200));
    server.notify("$/cancelRequest", json!({ "id": id }));
    let response = server.response(id);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    assert_eq!(server.wait_for_status()["state"], "ready");

    // The document changed since the action was offered: refused, no edit.
    server.change(
        PY_URI,
        2,
        json!([{ "range": range(0, 0, 0, 0), "text": "# shapes\n" }]),
    );
    match resolve(&mut server, &fill, PY_URI, PY) {
        Outcome::Edited(new) => panic!("a stale action must not edit: {new}"),
        Outcome::Refused(message) => assert!(message.contains("changed"), "{message}"),
    }

    // Resolve data whose range is outside the document (a client that kept it too long).
    let moved = format!("# shapes\n{PY}");
    let actions = code_actions(&mut server, PY_URI, position_of(&moved, "pass"), json!([]));
    let mut bad = titled(&actions, "fill the body").clone();
    bad["data"]["range"] = range(999, 0, 999, 0);
    match resolve(&mut server, &bad, PY_URI, &moved) {
        Outcome::Edited(new) => panic!("must not edit: {new}"),
        Outcome::Refused(message) => assert!(message.contains("outside"), "{message}"),
    }
    // Not moat's data at all: an error, not a crash.
    let error = server.request_error("codeAction/resolve", json!({ "title": "x", "data": 3 }));
    assert_eq!(error["code"], -32602, "{error}");

    // Still serving: the same action on the current version resolves.
    let fill = titled(&actions, "fill the body").clone();
    let resolved = server.request("codeAction/resolve", fill);
    assert!(resolved["title"].is_string(), "{resolved}");
    assert!(server.shutdown_and_exit().success());
}

#[test]
fn the_default_model_fills_simple_bodies_sensibly() {
    let Some(model) = moat_model::default_model_for_tests("code_actions") else {
        return;
    };
    let mut server = Server::start_ready(&Options::default().model(&model));
    let cases = [
        (
            "file:///e2e/actions/even.py",
            "python",
            "def is_even(n: int) -> bool:\n    \"\"\"Whether n is divisible by two.\"\"\"\n    pass\n",
            "pass",
            Language::Python,
            &["return", "% 2"][..],
        ),
        (
            "file:///e2e/actions/add.rs",
            "rust",
            "/// The sum of `a` and `b`.\npub fn add(a: i64, b: i64) -> i64 {\n    todo!()\n}\n",
            "todo",
            Language::Rust,
            &["a + b"][..],
        ),
        (
            "file:///e2e/actions/max.ts",
            "typescript",
            "/** The larger of a and b. */\nexport function max(a: number, b: number): number {\n  throw new Error(\"not implemented\");\n}\n",
            "throw",
            Language::TypeScript,
            &["return", "a", "b"][..],
        ),
    ];
    for (uri, id, text, stub, language, wanted) in cases {
        server.open(uri, id, text);
        let actions = code_actions(&mut server, uri, position_of(text, stub), json!([]));
        let fill = titled(&actions, "fill the body");
        match resolve(&mut server, fill, uri, text) {
            Outcome::Edited(new) => {
                assert_eq!(syntax_errors(language, &new), 0, "{new}");
                assert!(!new.contains(stub), "the stub is replaced: {new}");
                for w in wanted {
                    assert!(new.contains(w), "{id}: {w:?} in\n{new}");
                }
            }
            Outcome::Refused(message) => panic!("{id}: refused: {message}"),
        }
    }
    // A docstring in Python's convention.
    let uri = "file:///e2e/actions/doc.py";
    let text = "def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32\n";
    server.open(uri, "python", text);
    let actions = code_actions(&mut server, uri, position_of(text, "return"), json!([]));
    match resolve(&mut server, titled(&actions, "doc comment"), uri, text) {
        Outcome::Edited(new) => {
            assert!(
                new.starts_with("def celsius_to_fahrenheit(c):\n    \"\"\""),
                "{new}"
            );
            assert_eq!(syntax_errors(Language::Python, &new), 0, "{new}");
        }
        Outcome::Refused(message) => panic!("doc: refused: {message}"),
    }

    // A diagnostic fixed by rewriting its statement.
    let (uri, text) = (FIX_URI, FIX);
    let actions = open_with_diagnostic(&mut server, None);
    match resolve(&mut server, titled(&actions, "fix"), uri, text) {
        Outcome::Edited(new) => assert!(new.contains("result += p\n"), "{new}"),
        Outcome::Refused(message) => panic!("fix: refused: {message}"),
    }
    drop(server);
    // A test in the repository's test file.
    if let Outcome::Refused(message) = write_a_test(Options::default().model(model)) {
        panic!("test: refused: {message}");
    }
}

/// A loopback OpenAI-style completions server: its address, how many requests it answered, and
/// their bodies.
struct Remote {
    base: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A [`Remote`] that answers every request with `text`.
fn completions_server(text: &'static str) -> Remote {
    completions_server_after(text, std::time::Duration::ZERO)
}

/// As [`completions_server`], answering each request only after `delay` (a slow remote model).
fn completions_server_after(text: &'static str, delay: std::time::Duration) -> Remote {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let Ok(read_half) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read_half);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            if let Ok(mut all) = record.lock() {
                all.push(String::from_utf8_lossy(&body).into_owned());
            }
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(delay);
            let reply =
                json!({ "choices": [{ "text": text, "finish_reason": "stop" }] }).to_string();
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    Remote {
        base,
        requests: count,
        bodies,
    }
}

#[test]
fn an_action_set_to_remote_runs_on_the_manifests_remote_server() {
    let Remote { base, requests, .. } = completions_server("    return width * height\n");
    let dir = remote_model(&base);
    let options = Options::default()
        .model(dir.path())
        .init_options(json!({ "debounceMs": 0, "codeActionRemote": ["fillBody"] }));
    let mut server = Server::start_ready(&options);
    server.open(PY_URI, "python", PY);
    let actions = code_actions(&mut server, PY_URI, position_of(PY, "pass"), json!([]));
    match resolve(&mut server, titled(&actions, "fill the body of `area`"), PY_URI, PY) {
        Outcome::Edited(new) => assert!(
            new.starts_with("def area(width, height):\n    \"\"\"Width times height.\"\"\"\n    return width * height\n"),
            "{new}"
        ),
        Outcome::Refused(message) => panic!("refused: {message}"),
    }
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one remote request"
    );
    // The other actions stay local: the remote server hears nothing more.
    let actions = code_actions(&mut server, PY_URI, position_of(PY, "2 * ("), json!([]));
    let _ = resolve(&mut server, titled(&actions, "doc comment"), PY_URI, PY);
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the doc comment ran locally"
    );
}

/// tiny-llama in-process for completions, plus a `[remote]` section (`base`) for chosen actions.
fn remote_model(base: &str) -> TempDir {
    let dir = TempDir::new("actions-remote-model");
    let tiny = moat_e2e::model_dir("tiny-llama");
    let manifest = std::fs::read_to_string(tiny.join("model.toml")).expect("model.toml");
    let manifest = manifest.replace(
        "onnx = \"model.onnx\"",
        &format!("onnx = \"{}\"", tiny.join("model.onnx").display()),
    );
    std::fs::write(
        dir.path().join("model.toml"),
        format!("{manifest}\n[remote]\nbase_url = \"{base}\"\nmodel = \"fill\"\n"),
    )
    .expect("write model.toml");
    std::fs::copy(
        tiny.join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .expect("tokenizer");

    dir
}

#[test]
fn a_resolve_cancelled_while_the_model_writes_changes_nothing() {
    // The remote model takes 3 s: the cancel comes while it writes.
    let Remote { base, requests, .. } = completions_server_after(
        "    return width * height\n",
        std::time::Duration::from_secs(3),
    );
    let dir = remote_model(&base);
    let options = Options::default()
        .model(dir.path())
        .init_options(json!({ "debounceMs": 0, "codeActionRemote": ["all"] }));
    let mut server = Server::start_ready(&options);
    server.open(PY_URI, "python", PY);
    let actions = code_actions(&mut server, PY_URI, position_of(PY, "pass"), json!([]));
    let fill = titled(&actions, "fill the body of `area`").clone();
    let id = server.send_request("codeAction/resolve", fill.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while requests.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the model was never asked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.notify("$/cancelRequest", json!({ "id": id }));
    let response = server.response(id);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    assert!(response.get("result").is_none(), "no edit: {response}");
    // Still serving: the same action resolves (after the slow model's 3 s).
    match resolve(&mut server, &fill, PY_URI, PY) {
        Outcome::Edited(new) => assert!(new.contains("    return width * height\n"), "{new}"),
        Outcome::Refused(message) => panic!("refused: {message}"),
    }
    assert!(server.shutdown_and_exit().success());
}

#[test]
fn the_prompt_holds_repository_context_from_the_index() {
    let remote = completions_server("    return to_metres(width) * to_metres(height)\n");
    let dir = remote_model(&remote.base);
    let ws = TempDir::new("actions-repo");
    let root = ws.path();
    std::fs::write(
        root.join("units.py"),
        "def to_metres(feet):\n    \"\"\"Feet to metres (the survey foot).\"\"\"\n    return feet * 0.3048006096\n",
    )
    .unwrap();
    let source = "from units import to_metres\n\nSIDE = to_metres(3)\n\n\ndef area(width, height):\n    pass\n";
    std::fs::write(root.join("shapes.py"), source).unwrap();
    let options = Options::default()
        .model(dir.path())
        .root(root)
        .init_options(json!({ "debounceMs": 0, "codeActionRemote": ["fillBody"] }));
    let mut server = Server::start_ready(&options);
    // The index is ready once it says so (a status the start may already have read).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        server.drain();
        let indexed = server
            .log
            .iter()
            .any(|m| m["method"] == "moat/status" && m["params"]["state"] == "indexed");
        if indexed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the workspace was not indexed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let uri = format!("file://{}/shapes.py", root.display());
    server.open(&uri, "python", source);
    let actions = code_actions(&mut server, &uri, position_of(source, "pass"), json!([]));
    match resolve(
        &mut server,
        titled(&actions, "fill the body of `area`"),
        &uri,
        source,
    ) {
        Outcome::Edited(new) => assert!(
            new.ends_with("    return to_metres(width) * to_metres(height)\n"),
            "{new}"
        ),
        Outcome::Refused(message) => panic!("refused: {message}"),
    }
    let bodies = remote.bodies.lock().unwrap().join("\n");
    assert!(
        bodies.contains("units.py") && bodies.contains("survey foot"),
        "the definition of to_metres from units.py is in the prompt: {bodies}"
    );
}

#[test]
fn a_client_without_resolve_runs_the_actions_command_and_the_edit_is_applied() {
    let remote = completions_server("    return width * height\n");
    let dir = remote_model(&remote.base);
    let options = Options::default()
        .model(dir.path())
        .without_code_action_resolve()
        .init_options(json!({ "debounceMs": 0, "codeActionRemote": ["fillBody"] }));
    let mut server = Server::start_ready(&options);
    let commands = &server.init_result["capabilities"]["executeCommandProvider"]["commands"];
    assert!(
        commands
            .as_array()
            .is_some_and(|c| c.contains(&json!("moat.runCodeAction"))),
        "{commands}"
    );
    server.open(PY_URI, "python", PY);
    let actions = code_actions(&mut server, PY_URI, position_of(PY, "pass"), json!([]));
    let fill = titled(&actions, "fill the body of `area`").clone();
    assert!(fill.get("edit").is_none(), "computed when chosen: {fill}");
    let command = &fill["command"];
    assert_eq!(command["command"], "moat.runCodeAction", "{fill}");
    let run = json!({ "command": command["command"], "arguments": command["arguments"] });

    // Choosing it: the server computes the edit and asks the client to apply it.
    let result = server.request("workspace/executeCommand", run.clone());
    assert!(result.is_null(), "{result}");
    let apply_edit = server.wait_for_notification("workspace/applyEdit");
    let edits = apply_edit["edit"]["changes"][PY_URI]
        .as_array()
        .unwrap_or_else(|| panic!("an edit of {PY_URI}: {apply_edit}"));
    let new = apply(PY, edits);
    assert!(
        new.starts_with(
            "def area(width, height):\n    \"\"\"Width times height.\"\"\"\n    return width * height\n"
        ),
        "{new}"
    );
    assert_eq!(syntax_errors(Language::Python, &new), 0, "{new}");

    // The same command after the document changed: refused with a message, nothing applied.
    server.change(
        PY_URI,
        2,
        json!([{ "range": range(0, 0, 0, 0), "text": "# shapes\n" }]),
    );
    let result = server.request("workspace/executeCommand", run);
    assert!(result.is_null(), "{result}");
    let message = server.wait_for_notification("window/showMessage");
    assert!(
        message["message"]
            .as_str()
            .is_some_and(|m| m.contains("changed")),
        "{message}"
    );
    assert!(
        server
            .try_wait_for_notification("workspace/applyEdit", std::time::Duration::from_millis(300))
            .is_none(),
        "a refused action applies nothing"
    );
    // Arguments that are not an action's: an error, and the server keeps serving.
    let error = server.request_error(
        "workspace/executeCommand",
        json!({ "command": "moat.runCodeAction", "arguments": [3] }),
    );
    assert_eq!(error["code"], -32602, "{error}");
    assert!(server.shutdown_and_exit().success());
}
