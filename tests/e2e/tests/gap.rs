//! Typing between a request and its answer (a long debounce opens the gap): what was typed at
//! the requested position is part of the answer, computed for the document as it is now; an
//! answer that cannot be placed any more is dropped instead of offered stale.

use moat_e2e::fixture::{PY_TEXT, PY_URI};
use moat_e2e::{Options, Server, apply_edit, completion_items, end_position, inline_items, json};

/// What a fresh server suggests at the end of `text`.
fn reference(text: &str) -> String {
    let mut server = Server::start_ready(&Options::default());
    let uri = "file:///e2e/project/reference.py";
    server.open(uri, "python", text);
    let (line, character) = end_position(text, "utf-16");
    server.inline_text(uri, line, character).unwrap_or_default()
}

fn gap_server(options: Options) -> Server {
    let mut server = Server::start_ready(&options.init_options(json!({ "debounceMs": 400 })));
    server.open(PY_URI, "python", PY_TEXT);
    server
}

#[test]
fn typing_in_the_gap_is_part_of_the_completion_item() {
    let mut server = gap_server(Options::default());
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let id = server.send_completion(PY_URI, line, character);
    // Not the suggestion's next character: the answer is computed for "f.rex".
    server.type_at(PY_URI, 1, line, character, "x");
    let typed = format!("{PY_TEXT}x");
    let response = server.response(id);
    let items = completion_items(&response["result"]);
    assert_eq!(items.len(), 1, "{response}");
    let suggestion = reference(&typed);
    assert!(!suggestion.is_empty());
    let expected = format!("{typed}{suggestion}");
    let edit = &items[0]["textEdit"];
    assert_eq!(edit["newText"], format!("rex{suggestion}"));
    assert_eq!(apply_edit(PY_TEXT, edit), expected, "applied as Helix does");
    let mut to_cursor = edit.clone();
    to_cursor["range"]["end"]["character"] = json!(character + 1);
    assert_eq!(
        apply_edit(&typed, &to_cursor),
        expected,
        "applied as Neovim does"
    );
    assert!(
        items[0]["filterText"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rex")
    );
}

#[test]
fn typing_in_the_gap_is_part_of_the_inline_item() {
    let mut server = gap_server(Options::default());
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let id = server.send_inline(PY_URI, line, character);
    server.type_at(PY_URI, 1, line, character, "x");
    let typed = format!("{PY_TEXT}x");
    let response = server.response(id);
    let items = inline_items(&response["result"]);
    assert_eq!(items.len(), 1, "{response}");
    // Replaces the typed text (requested position .. cursor now) with it + the suggestion.
    let edit = json!({ "range": items[0]["range"], "newText": items[0]["insertText"] });
    let end = json!({ "line": line, "character": character + 1 });
    assert_eq!(items[0]["range"]["end"], end);
    assert_eq!(
        apply_edit(&typed, &edit),
        format!("{typed}{}", reference(&typed))
    );
}

#[test]
fn an_answer_that_cannot_be_placed_is_dropped() {
    let (line, character) = end_position(PY_TEXT, "utf-16");
    // A new line, an edit elsewhere, a closing bracket (auto-pairs leave the cursor before it).
    let edits = [
        (line, character, "\n"),
        (0, 0, "#"),
        (line, character, "l()"),
    ];
    for (l, c, text) in edits {
        let mut server = gap_server(Options::default());
        let id = server.send_completion(PY_URI, line, character);
        let at = json!({ "line": l, "character": c });
        server.change(
            PY_URI,
            2,
            json!([{ "range": { "start": at, "end": at }, "text": text }]),
        );
        let response = server.response(id);
        assert!(
            completion_items(&response["result"]).is_empty(),
            "after typing {text:?}: {response}"
        );
        assert_eq!(response["result"]["isIncomplete"], true, "{response}");
    }
}

#[test]
fn neovim_gets_snippet_items_that_keep_every_character() {
    let options = Options::default().client("Neovim", true);
    let mut server = Server::start_ready(&options);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    server.open(PY_URI, "python", PY_TEXT);
    let items = completion_items(&server.completion(PY_URI, line, character));
    assert_eq!(items[0]["insertTextFormat"], 2, "{items:?}");
    assert_eq!(items[0]["textEdit"]["newText"], "release()");

    // Multi-line, on a fresh indented line: later lines relative to the line's indentation.
    let text = "if x:\n    ";
    let uri = "file:///e2e/project/multi.py";
    server.open(uri, "python", text);
    let result = server.completion(uri, 1, 4);
    let snippet = completion_items(&result)[0]["textEdit"]["newText"]
        .as_str()
        .expect("newText")
        .to_string();
    let mut plain = Server::start_ready(&Options::default().client("helix", true));
    plain.open(uri, "python", text);
    let item = completion_items(&plain.completion(uri, 1, 4))[0].clone();
    assert_eq!(item["insertTextFormat"], 1, "Helix: plain text");
    let whole = item["textEdit"]["newText"].as_str().expect("newText");
    assert!(whole.contains('\n'), "a multi-line suggestion: {whole:?}");
    // Snippet expansion adds the line's indentation to each later line: the same text results
    // (the test model's suggestion has nothing to escape and does not dedent).
    let expanded = snippet.replace('\n', "\n    ");
    assert_eq!(expanded, whole);
}
