//! Process lifecycle: exit codes per the LSP spec, and the end of input.

use moat_e2e::{Options, Server, TIMEOUT, Value, codes};

#[test]
fn shutdown_then_exit_is_exit_code_0() {
    let mut server = Server::start_ready(&Options::default());
    assert_eq!(server.request("shutdown", Value::Null), Value::Null);
    // After shutdown, requests are refused (InvalidRequest).
    let error = server.request_error(
        "textDocument/completion",
        serde_json::json!({ "textDocument": { "uri": "file:///x.py" }, "position": { "line": 0, "character": 0 } }),
    );
    assert_eq!(error["code"], codes::INVALID_REQUEST, "{error}");
    server.notify("exit", Value::Null);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(0));
}

#[test]
fn exit_without_shutdown_is_exit_code_1() {
    let mut server = Server::start_ready(&Options::default());
    server.notify("exit", Value::Null);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(1));
}

#[test]
fn exit_before_initialize_is_exit_code_1() {
    let mut server = Server::spawn(&Options::default());
    server.notify("exit", Value::Null);
    assert_eq!(server.wait_exit(TIMEOUT).code(), Some(1));
}

#[test]
fn closed_stdin_ends_the_process() {
    let mut server = Server::start_ready(&Options::default());
    server.close_stdin();
    let status = server.wait_exit(TIMEOUT);
    assert_ne!(status.code(), Some(0), "no shutdown came first: {status}");
}

#[test]
fn closed_stdin_while_loading_ends_the_process() {
    let mut server = Server::start(&Options::default());
    server.close_stdin();
    server.wait_exit(TIMEOUT);
}
