//! The scheduler: a newer request for a document supersedes the older one, and `$/cancelRequest`
//! cancels a pending one; both answer -32800 (RequestCancelled).

use moat_e2e::fixture::{PY_TEXT, PY_URI};
use moat_e2e::{Options, Server, codes, end_position, inline_items, json};

fn slow_debounce_server() -> Server {
    let mut server =
        Server::start_ready(&Options::default().init_options(json!({ "debounceMs": 200 })));
    server.open(PY_URI, "python", PY_TEXT);
    server
}

#[test]
fn newer_request_supersedes_older() {
    let mut server = slow_debounce_server();
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let first = server.send_inline(PY_URI, line, character);
    let second = server.send_inline(PY_URI, line, character);
    let first = server.response(first);
    assert_eq!(first["error"]["code"], codes::REQUEST_CANCELLED, "{first}");
    let second = server.response(second);
    assert!(second.get("error").is_none(), "{second}");
    assert_eq!(inline_items(&second["result"]).len(), 1, "{second}");

    // A completion request supersedes a pending inline request for the same document too.
    let inline = server.send_inline(PY_URI, line, character);
    let completion = server.send_request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": PY_URI }, "position": { "line": line, "character": character } }),
    );
    assert_eq!(
        server.response(inline)["error"]["code"],
        codes::REQUEST_CANCELLED
    );
    let completion = server.response(completion);
    assert!(completion.get("error").is_none(), "{completion}");

    // Requests for different documents do not cancel each other.
    let other = "file:///e2e/project/other.py";
    server.open(other, "python", PY_TEXT);
    let a = server.send_inline(PY_URI, line, character);
    let b = server.send_inline(other, line, character);
    for id in [a, b] {
        let response = server.response(id);
        assert!(response.get("error").is_none(), "{response}");
    }
}

#[test]
fn cancel_request_answers_request_cancelled() {
    let mut server = slow_debounce_server();
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let id = server.send_inline(PY_URI, line, character);
    server.notify("$/cancelRequest", json!({ "id": id }));
    let response = server.response(id);
    assert_eq!(
        response["error"]["code"],
        codes::REQUEST_CANCELLED,
        "{response}"
    );
    // Cancelling an id that is already answered (or unknown) is harmless.
    server.notify("$/cancelRequest", json!({ "id": id }));
    server.notify("$/cancelRequest", json!({ "id": 987654 }));
    let result = server.inline(PY_URI, line, character);
    assert_eq!(inline_items(&result).len(), 1, "{result}");
}
