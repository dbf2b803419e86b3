//! Requests made while the model loads (a test-only load delay stands in for a big model): each is
//! answered once the model is ready, for the document as it is then, and the next keystroke's
//! request replaces a waiting one. The wait is bounded (`loadWaitMs`) and ends at shutdown.

use std::time::{Duration, Instant};

use moat_e2e::fixture::{PY_TEXT, PY_URI, PY_WORD};
use moat_e2e::{
    Options, Server, apply_edit, codes, completion_items, end_position, inline_items, json,
};

/// What tiny-llama suggests at the end of [`PY_TEXT`].
const LLAMA_AT_PY_END: &str = "lease()";
const DELAY_MS: u64 = 1500;

/// What a fresh server with a loaded model suggests at the end of `text`.
fn reference(text: &str) -> String {
    let mut server = Server::start_ready(&Options::default());
    let uri = "file:///e2e/project/reference.py";
    server.open(uri, "python", text);
    let (line, character) = end_position(text, "utf-16");
    server
        .inline_text(uri, line, character)
        .expect("the reference server suggests something")
}

fn loading_server(options: Options) -> Server {
    let mut server = Server::start(&options.load_delay_ms(DELAY_MS));
    let status = server.wait_for_notification("moat/status");
    assert_eq!(status["state"], "loading", "{status}");
    server.open(PY_URI, "python", PY_TEXT);
    server
}

#[test]
fn a_request_made_while_the_model_loads_is_answered_when_it_is_ready() {
    let mut server = loading_server(Options::default());
    let started = Instant::now();
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let id = server.send_inline(PY_URI, line, character);
    let response = server.response(id);
    assert!(response.get("error").is_none(), "{response}");
    let items = inline_items(&response["result"]);
    assert_eq!(items.len(), 1, "{response}");
    assert_eq!(items[0]["insertText"], LLAMA_AT_PY_END);
    assert!(
        started.elapsed() >= Duration::from_millis(DELAY_MS / 2),
        "answered after {:?}, before the model could be ready",
        started.elapsed()
    );
    assert_eq!(server.wait_for_status()["state"], "ready");
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

#[test]
fn typing_while_the_model_loads_gets_a_suggestion_for_what_was_typed() {
    let mut server = loading_server(Options::default());
    let (line, character) = end_position(PY_TEXT, "utf-16");
    // Helix: one completion request, then the user keeps typing; it does not ask again while
    // the request is in flight.
    let id = server.send_completion(PY_URI, line, character);
    server.type_at(PY_URI, 1, line, character, "le");
    let typed = format!("{PY_TEXT}le");
    let response = server.response(id);
    assert!(response.get("error").is_none(), "{response}");
    let items = completion_items(&response["result"]);
    assert_eq!(items.len(), 1, "{response}");
    let edit = &items[0]["textEdit"];
    let expected = format!("{typed}{}", reference(&typed));
    // The range is the request's: from the word before the requested position to it.
    let at = json!({ "line": line, "character": character });
    let word_start = json!({ "line": line, "character": character - PY_WORD.len() as u32 });
    assert_eq!(edit["range"], json!({ "start": word_start, "end": at }));
    // Helix restores the document as it was at the request, then applies the edit.
    assert_eq!(apply_edit(PY_TEXT, edit), expected);
    // Neovim replaces from the range's start to the cursor.
    let mut neovim_edit = edit.clone();
    neovim_edit["range"]["end"]["character"] = json!(character + 2);
    assert_eq!(apply_edit(&typed, &neovim_edit), expected);
    // The client filters with what was typed (from the word's start): the item starts with it.
    let filter = items[0]["filterText"].as_str().unwrap_or_default();
    assert!(filter.starts_with("rele"), "{filter:?}");
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

#[test]
fn the_next_keystroke_replaces_a_request_waiting_for_the_model() {
    let mut server = loading_server(Options::default());
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let first = server.send_inline(PY_URI, line, character);
    server.type_at(PY_URI, 1, line, character, "l");
    let second = server.send_inline(PY_URI, line, character + 1);
    let first = server.response(first);
    assert_eq!(first["error"]["code"], codes::REQUEST_CANCELLED, "{first}");
    let second = server.response(second);
    let items = inline_items(&second["result"]);
    assert_eq!(items.len(), 1, "{second}");
    let typed = format!("{PY_TEXT}l");
    assert_eq!(items[0]["insertText"], reference(&typed));
    let at = json!({ "line": line, "character": character + 1 });
    assert_eq!(items[0]["range"], json!({ "start": at, "end": at }));
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

#[test]
fn the_wait_for_the_model_is_bounded() {
    let mut server = Server::start(
        &Options::default()
            .load_delay_ms(6000)
            .init_options(json!({ "debounceMs": 0, "loadWaitMs": 300 })),
    );
    server.open(PY_URI, "python", PY_TEXT);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let started = Instant::now();
    assert!(inline_items(&server.inline(PY_URI, line, character)).is_empty());
    assert!(completion_items(&server.completion(PY_URI, line, character)).is_empty());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[test]
fn shutdown_ends_requests_waiting_for_the_model() {
    let mut server = Server::start(&Options::default().load_delay_ms(8000));
    server.open(PY_URI, "python", PY_TEXT);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let id = server.send_inline(PY_URI, line, character);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
    let response = server.response(id);
    assert_eq!(
        response["error"]["code"],
        codes::REQUEST_CANCELLED,
        "{response}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
