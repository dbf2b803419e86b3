//! Clean exit under load (issue 16): `shutdown` + `exit` while a generation runs on a blocking
//! thread, the workspace index is being written and malformed input was just dropped must end the
//! process with code 0, never a signal (the SIGABRT once seen came from C++ destructors of ONNX
//! Runtime running at process exit while a worker thread was still inside the session).
//!
//! `MOAT_EXIT_ROUNDS` sets the number of rounds (default 4; the long run in README uses 100);
//! `MOAT_EXIT_MODEL` another model folder (the default model makes each generation seconds long).

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use moat_e2e::fixture::{PY_TEXT, PY_URI};
use moat_e2e::{Options, Server, TempDir, Value, end_position, json};

/// A workspace big enough that indexing is still running a few hundred milliseconds in.
fn busy_workspace() -> TempDir {
    let dir = TempDir::new("exit-ws");
    for i in 0..400 {
        let sub = dir.path().join(format!("pkg{}", i % 20));
        std::fs::create_dir_all(&sub).expect("mkdir");
        let mut text = String::new();
        for j in 0..40 {
            text.push_str(&format!(
                "def function_{i}_{j}(value, other):\n    total = value + other * {j}\n    return total\n\n"
            ));
        }
        std::fs::write(sub.join(format!("module_{i}.py")), text).expect("write");
    }
    dir
}

fn rounds() -> usize {
    std::env::var("MOAT_EXIT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// One round: load, start work everywhere, then shutdown + exit at once.
fn exit_while_busy(root: &std::path::Path, round: usize) {
    // A long generation (many tokens, multi-line) keeps the blocking thread inside ONNX Runtime.
    let mut options = Options::default()
        .root(root)
        .init_options(json!({ "debounceMs": 0, "maxTokens": 512, "maxLines": 200 }));
    if let Some(model) = std::env::var_os("MOAT_EXIT_MODEL") {
        options = options.model(model);
    }
    let mut server = Server::start_ready(&options);
    server.open(PY_URI, "python", PY_TEXT);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    // Malformed input first (the original report came after a run of it).
    server.send_body(b"{\"jsonrpc\": \"2.0\", \"id\": 9, \"method\": ");
    server.send_raw(b"Content-Length: nope\r\n\r\n");
    for _ in 0..3 {
        server.send_inline(PY_URI, line, character);
        server.send_completion(PY_URI, line, character);
    }
    // A file change on disk while indexing: an index write in flight.
    let changed = root.join("pkg0/module_0.py");
    std::fs::write(&changed, format!("def changed_{round}():\n    pass\n")).expect("write");
    server.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": format!("file://{}", changed.display()), "type": 2 }] }),
    );
    // Vary the moment of the exit a little between rounds.
    std::thread::sleep(Duration::from_millis((round as u64 * 37) % 120));
    let id = server.send_request("shutdown", Value::Null);
    let response = server.response(id);
    assert_eq!(response["result"], Value::Null, "{response}");
    server.notify("exit", Value::Null);
    let status = server.wait_exit(Duration::from_secs(20));
    let log = server.stderr_log();
    assert_eq!(
        status.signal(),
        None,
        "round {round}: killed by a signal: {status}\n{log}"
    );
    assert_eq!(status.code(), Some(0), "round {round}: {status}\n{log}");
    assert!(!log.contains("panicked"), "round {round}: {log}");
}

#[test]
fn exit_during_generation_and_index_write_is_clean() {
    let root = busy_workspace();
    for round in 0..rounds() {
        exit_while_busy(root.path(), round);
    }
}

/// The end of input (the editor died) while busy: the process ends without a signal either.
#[test]
fn end_of_input_during_generation_is_clean() {
    let root = busy_workspace();
    let options = Options::default()
        .root(root.path())
        .init_options(json!({ "debounceMs": 0, "maxTokens": 512, "maxLines": 200 }));
    let mut server = Server::start_ready(&options);
    server.open(PY_URI, "python", PY_TEXT);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    server.send_inline(PY_URI, line, character);
    std::thread::sleep(Duration::from_millis(30));
    server.close_stdin();
    let status = server.wait_exit(Duration::from_secs(20));
    assert_eq!(status.signal(), None, "{status}\n{}", server.stderr_log());
}

/// An editor that sends `exit` right behind `shutdown` without waiting for the answer: the
/// pending `shutdown` is cut short (answered "cancelled"), but it was received, so the exit code
/// is 0 (it was 1 in most rounds before the transport noted the request).
#[test]
fn exit_right_behind_shutdown_is_exit_code_0() {
    for round in 0..10 {
        let mut server = Server::start_ready(&Options::default());
        server.send_request("shutdown", Value::Null);
        server.notify("exit", Value::Null);
        let status = server.wait_exit(Duration::from_secs(20));
        assert_eq!(
            status.code(),
            Some(0),
            "round {round}: {status}\n{}",
            server.stderr_log()
        );
    }
}
