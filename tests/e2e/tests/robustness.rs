//! Bad input never kills or wedges the server: after each case a normal request still succeeds.

use std::time::{Duration, Instant};

use moat_e2e::fixture::{PY_TEXT, PY_URI};
use moat_e2e::{Options, Server, codes, end_position, inline_items, json};

fn ready_server() -> Server {
    let mut server = Server::start_ready(&Options::default());
    server.open(PY_URI, "python", PY_TEXT);
    server
}

/// The server still answers: a real suggestion for the fixture.
fn assert_alive(server: &mut Server) {
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let result = server.inline(PY_URI, line, character);
    assert_eq!(inline_items(&result).len(), 1, "{result}");
    assert!(server.is_running());
}

/// After unparseable input: either a response with `id: null` and a parse/invalid-request error,
/// or nothing at all; and the server must keep serving.
fn assert_rejected_then_alive(server: &mut Server) {
    if let Some(response) = server.null_id_response(Duration::from_millis(300)) {
        let code = response["error"]["code"].as_i64();
        assert!(
            code == Some(codes::PARSE_ERROR) || code == Some(codes::INVALID_REQUEST),
            "{response}"
        );
    }
    assert_alive(server);
}

#[test]
fn malformed_json_body() {
    let mut server = ready_server();
    server.send_body(b"{\"jsonrpc\": \"2.0\", \"id\": 77, \"method\": ");
    assert_rejected_then_alive(&mut server);
    server.send_body(b"this is not json at all");
    assert_rejected_then_alive(&mut server);
}

#[test]
fn json_that_is_not_a_message() {
    let mut server = ready_server();
    server.send_body(b"[1, 2, 3]");
    assert_rejected_then_alive(&mut server);
    server.send_body(br#"{"hello": "world"}"#);
    assert_rejected_then_alive(&mut server);
}

#[test]
fn invalid_utf8_in_body() {
    let mut server = ready_server();
    let mut body = br#"{"jsonrpc":"2.0","method":"moat/x","params":{"s":""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    body.extend_from_slice(br#""}}"#);
    server.send_body(&body);
    assert_rejected_then_alive(&mut server);
}

#[test]
fn garbage_between_frames() {
    let mut server = ready_server();
    server.send_raw(b"garbage without any header\r\n\r\n");
    server.send_raw(b"Content-Length: nope\r\n\r\n{}");
    assert_rejected_then_alive(&mut server);
}

#[test]
fn unknown_method_and_notification() {
    let mut server = ready_server();
    let error = server.request_error("moat/noSuchMethod", json!({}));
    assert_eq!(error["code"], codes::METHOD_NOT_FOUND, "{error}");
    server.notify("moat/noSuchNotification", json!({ "x": 1 }));
    server.notify("$/noSuchNotification", json!(null));
    assert_alive(&mut server);
}

#[test]
fn bad_params() {
    let mut server = ready_server();
    let error = server.request_error(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": PY_URI }, "position": "here" }),
    );
    assert_eq!(error["code"], codes::INVALID_PARAMS, "{error}");
    let error = server.request_error("textDocument/completion", json!(null));
    assert_eq!(error["code"], codes::INVALID_PARAMS, "{error}");
    assert_alive(&mut server);
}

#[test]
fn out_of_range_positions() {
    let mut server = ready_server();
    let id = server.send_inline(PY_URI, 9999, 0);
    let response = server.response(id);
    match response.get("error") {
        Some(error) => assert_eq!(error["code"], codes::INVALID_PARAMS, "{response}"),
        None => assert!(inline_items(&response["result"]).is_empty(), "{response}"),
    }
    let error = server.request_error(
        "textDocument/completion",
        json!({ "textDocument": { "uri": PY_URI }, "position": { "line": 9999, "character": 3 } }),
    );
    assert_eq!(error["code"], codes::INVALID_PARAMS, "{error}");
    // A character past the end of a line means the end of that line (LSP).
    let result = server.inline(PY_URI, 4, 9999);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    for item in inline_items(&result) {
        assert_eq!(
            item["range"]["start"],
            json!({ "line": line, "character": character })
        );
    }
    assert_alive(&mut server);
}

#[test]
fn document_never_opened() {
    let mut server = ready_server();
    let error = server.request_error(
        "textDocument/inlineCompletion",
        json!({
            "textDocument": { "uri": "file:///e2e/never/opened.py" },
            "position": { "line": 0, "character": 0 },
            "context": { "triggerKind": 2 }
        }),
    );
    assert_eq!(error["code"], codes::INVALID_PARAMS, "{error}");
    // A change to a document that is not open is logged, not fatal.
    server.change(
        "file:///e2e/never/opened.py",
        2,
        json!([{ "text": "print(1)\n" }]),
    );
    // A change with a range outside the document is rejected and logged.
    server.change(
        PY_URI,
        2,
        json!([{ "range": { "start": { "line": 50, "character": 0 }, "end": { "line": 60, "character": 0 } }, "text": "x" }]),
    );
    assert_alive(&mut server);
    // Closed documents are forgotten.
    server.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": PY_URI } }),
    );
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let id = server.send_inline(PY_URI, line, character);
    assert!(server.response(id).get("error").is_some());
}

#[test]
fn five_megabyte_file() {
    let mut server = ready_server();
    let chunk = "def function_number_{i}(argument, other=None):\n    value = argument * 2 + len(str(other))\n    return value\n\n";
    let mut text = String::with_capacity(5_300_000);
    let mut i = 0;
    while text.len() < 5_000_000 {
        text.push_str(&chunk.replace("{i}", &i.to_string()));
        i += 1;
    }
    text.push_str("def last(path):\n    with open(path) as f:\n        return f.re");
    let uri = "file:///e2e/project/huge.py";
    // Each answer must come within TIMEOUT (`response` fails the test otherwise); the first one
    // includes the first parse of the whole file.
    let started = Instant::now();
    server.open(uri, "python", &text);
    let (line, character) = end_position(&text, "utf-16");
    let id = server.send_inline(uri, line, character);
    let response = server.response(id);
    assert!(response.get("result").is_some(), "{response}");
    let first = started.elapsed();
    // An edit at the end of the big file, then another request.
    let started = Instant::now();
    let at = json!({ "line": line, "character": character });
    server.change(
        uri,
        2,
        json!([{ "range": { "start": at, "end": at }, "text": "a" }]),
    );
    let id = server.send_inline(uri, line, character + 1);
    let response = server.response(id);
    assert!(response.get("result").is_some(), "{response}");
    eprintln!(
        "5 MB file: open + first request {first:?}, edit + request {:?}",
        started.elapsed()
    );
    assert_alive(&mut server);
}
