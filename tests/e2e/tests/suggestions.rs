//! Real suggestions from the deterministic test models, through both completion methods, after
//! full and incremental sync, in UTF-8 and UTF-16 position encodings.

use moat_e2e::fixture::{PY_TEXT, PY_URI, PY_WORD};
use moat_e2e::{Options, Server, completion_items, end_position, inline_items, json, model_dir};

/// What tiny-llama suggests at the end of [`PY_TEXT`] (greedy decoding: deterministic).
const LLAMA_AT_PY_END: &str = "lease()";
/// What tiny-gpt2 (PSM, concat KV layout) suggests there.
const GPT2_AT_PY_END: &str = "target_name, 'HAVE_name,";
/// What tiny-llama suggests at the end of [`WIDE_TEXT`].
const LLAMA_AT_WIDE_END: &str = "th.";

fn py_end(encoding: &str) -> (u32, u32) {
    end_position(PY_TEXT, encoding)
}

#[test]
fn inline_and_completion_give_the_snapshot() {
    let mut server = Server::start_ready(&Options::default());
    let (line, character) = py_end("utf-16");

    server.open(PY_URI, "python", PY_TEXT);
    let result = server.inline(PY_URI, line, character);
    let items = inline_items(&result);
    assert_eq!(items.len(), 1, "{result}");
    let text = items[0]["insertText"].as_str().expect("insertText");
    assert!(!text.is_empty());
    assert_eq!(text, LLAMA_AT_PY_END);
    let at = json!({ "line": line, "character": character });
    assert_eq!(items[0]["range"], json!({ "start": at, "end": at }));

    // Completion at the same place (a second request: the model runs again).
    let result = server.completion(PY_URI, line, character);
    let items = completion_items(&result);
    assert_eq!(items.len(), 1, "{result}");
    let edit = &items[0]["textEdit"];
    assert_eq!(edit["newText"], format!("{PY_WORD}{LLAMA_AT_PY_END}"));
    let word_start = json!({ "line": line, "character": character - PY_WORD.len() as u32 });
    assert_eq!(edit["range"], json!({ "start": word_start, "end": at }));
    assert_eq!(items[0]["filterText"], edit["newText"]);

    // Completion first on a second copy of the file: same text.
    let other = "file:///e2e/project/read_again.py";
    server.open(other, "python", PY_TEXT);
    let result = server.completion(other, line, character);
    let items = completion_items(&result);
    assert_eq!(
        items[0]["textEdit"]["newText"],
        format!("{PY_WORD}{LLAMA_AT_PY_END}")
    );

    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

/// Types `text` into an open, empty document one character at a time (each change a ranged
/// insert at the end, in UTF-16), with a typo fixed by a ranged delete after each newline.
fn type_out(server: &mut Server, uri: &str, text: &str) -> i64 {
    let mut typed = String::new();
    let mut version = 1;
    for c in text.chars() {
        let (line, character) = end_position(&typed, "utf-16");
        let at = json!({ "line": line, "character": character });
        version += 1;
        server.change(
            uri,
            version,
            json!([{ "range": { "start": at, "end": at }, "text": c.to_string() }]),
        );
        typed.push(c);
        if c == '\n' {
            // A typo and its correction, as two changes in one notification.
            let (line, character) = end_position(&typed, "utf-16");
            let at = json!({ "line": line, "character": character });
            let after = json!({ "line": line, "character": character + 3 });
            version += 1;
            server.change(
                uri,
                version,
                json!([
                    { "range": { "start": at, "end": at }, "text": "xyz" },
                    { "range": { "start": at, "end": after }, "text": "" },
                ]),
            );
        }
    }
    version
}

#[test]
fn incremental_typing_gives_the_same_suggestion_as_full_open() {
    let mut server = Server::start_ready(&Options::default());
    let (line, character) = py_end("utf-16");

    let typed = "file:///e2e/project/typed.py";
    server.open(typed, "python", "");
    // Ask halfway through too, so a syntax tree exists and is edited incrementally afterwards.
    let half = &PY_TEXT[..PY_TEXT.find("with").expect("fixture")];
    type_out(&mut server, typed, half);
    let (hl, hc) = end_position(half, "utf-16");
    let _ = server.inline(typed, hl, hc);
    let rest = &PY_TEXT[half.len()..];
    let mut version = 100;
    let mut done = half.to_string();
    for c in rest.chars() {
        let (l, ch) = end_position(&done, "utf-16");
        let at = json!({ "line": l, "character": ch });
        version += 1;
        server.change(
            typed,
            version,
            json!([{ "range": { "start": at, "end": at }, "text": c.to_string() }]),
        );
        done.push(c);
    }
    let incremental = server.inline_text(typed, line, character);

    server.open(PY_URI, "python", PY_TEXT);
    let full = server.inline_text(PY_URI, line, character);
    assert_eq!(incremental.as_deref(), Some(LLAMA_AT_PY_END));
    assert_eq!(full.as_deref(), Some(LLAMA_AT_PY_END));

    // Typing through the suggestion keeps the rest of it.
    let first = LLAMA_AT_PY_END
        .chars()
        .next()
        .expect("non-empty")
        .to_string();
    let at = json!({ "line": line, "character": character });
    server.change(
        typed,
        version + 1,
        json!([{ "range": { "start": at, "end": at }, "text": first }]),
    );
    let rest = server.inline_text(typed, line, character + 1);
    assert_eq!(rest.as_deref(), Some(&LLAMA_AT_PY_END[first.len()..]));
}

#[test]
fn whole_file_typed_char_by_char() {
    let mut server = Server::start_ready(&Options::default());
    let uri = "file:///e2e/project/typed_all.py";
    server.open(uri, "python", "");
    type_out(&mut server, uri, PY_TEXT);
    let (line, character) = py_end("utf-16");
    assert_eq!(
        server.inline_text(uri, line, character).as_deref(),
        Some(LLAMA_AT_PY_END)
    );
}

const WIDE_URI: &str = "file:///e2e/project/wide.py";
/// Emoji (two UTF-16 units, four bytes) and CJK (one unit, three bytes) before the cursor.
const WIDE_TEXT: &str = "# 😀 greeting\ns = \"😀中文\" + os.pa";

/// (suggestion, inline range, completion edit range) in `encoding`.
fn wide_suggestion(encoding: &str) -> (String, serde_json::Value, serde_json::Value) {
    let mut server = Server::start_ready(&Options::default().encodings(&[encoding]));
    assert_eq!(
        server.init_result["capabilities"]["positionEncoding"],
        encoding
    );
    server.open(WIDE_URI, "python", WIDE_TEXT);
    let (line, character) = end_position(WIDE_TEXT, encoding);
    let result = server.inline(WIDE_URI, line, character);
    let items = inline_items(&result);
    assert_eq!(items.len(), 1, "{encoding}: {result}");
    let text = items[0]["insertText"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let range = items[0]["range"].clone();
    let at = json!({ "line": line, "character": character });
    assert_eq!(
        range["start"], at,
        "{encoding}: the range starts at the cursor"
    );

    let result = server.completion(WIDE_URI, line, character);
    let items = completion_items(&result);
    assert_eq!(items.len(), 1, "{encoding}: {result}");
    let edit = items[0]["textEdit"].clone();
    assert_eq!(edit["newText"], format!("pa{text}"));
    assert_eq!(edit["range"]["end"], at);
    assert_eq!(
        edit["range"]["start"],
        json!({ "line": line, "character": character - 2 })
    );
    (text, range, edit["range"].clone())
}

#[test]
fn utf16_and_utf8_positions_after_emoji_and_cjk() {
    let (utf16, range16, _) = wide_suggestion("utf-16");
    let (utf8, range8, _) = wide_suggestion("utf-8");
    assert_eq!(utf16, LLAMA_AT_WIDE_END);
    assert_eq!(utf8, LLAMA_AT_WIDE_END);
    // `s = "😀中文" + os.pa`: 5 + 2 + 2 + 4 + 5 = 18 UTF-16 units; 5 + 4 + 6 + 4 + 5 = 24 bytes.
    assert_eq!(range16["start"], json!({ "line": 1, "character": 18 }));
    assert_eq!(range8["start"], json!({ "line": 1, "character": 24 }));
}

#[test]
fn gpt2_family_model_serves_too() {
    let mut server = Server::start_ready(&Options::default().model(model_dir("tiny-gpt2")));
    server.open(PY_URI, "python", PY_TEXT);
    let (line, character) = py_end("utf-16");
    let text = server.inline_text(PY_URI, line, character);
    assert_eq!(text.as_deref(), Some(GPT2_AT_PY_END));
    let result = server.completion(PY_URI, line, character);
    assert_eq!(
        completion_items(&result)[0]["textEdit"]["newText"],
        format!("{PY_WORD}{GPT2_AT_PY_END}")
    );
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}
