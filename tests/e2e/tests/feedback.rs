//! Feedback from a real LSP session (docs/feedback.md): accepted (the item's command, or the text
//! in the document, as Helix leaves it), dismissed, no source text unless it is turned on,
//! nothing at all when it is off, and `moat stats` on the file the server wrote.

use std::path::Path;
use std::process::Command;

use moat_e2e::fixture::{PY_TEXT, PY_URI};
use moat_e2e::{Options, Server, completion_items, end_position, inline_items, json, moat_binary};
use serde_json::Value;

fn options(dir: &Path) -> Options {
    Options::default()
        .env("MOAT_FEEDBACK", "1")
        .env("MOAT_FEEDBACK_DIR", dir.display())
}

fn records(dir: &Path) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(dir.join("feedback.jsonl")).unwrap_or_default();
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    (text, records)
}

/// Asks for ghost text at the end of `text`; returns the item.
fn inline_at_end(server: &mut Server, uri: &str, text: &str) -> Value {
    let (line, character) = end_position(text, "utf-16");
    let result = server.inline(uri, line, character);
    let items = inline_items(&result);
    assert_eq!(items.len(), 1, "{result}");
    items[0].clone()
}

/// Inserts `inserted` at the end of the document (version `version`).
fn append(server: &mut Server, uri: &str, text: &str, version: i64, inserted: &str) -> String {
    let (line, character) = end_position(text, "utf-16");
    let at = json!({ "line": line, "character": character });
    server.change(
        uri,
        version,
        json!([{ "range": { "start": at, "end": at }, "text": inserted }]),
    );
    format!("{text}{inserted}")
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("moat-e2e-feedback-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn accept_and_dismiss_are_recorded_without_source_text() {
    let dir = tmpdir("record");
    let mut server = Server::start_ready(&options(&dir));
    let commands = &server.init_result["capabilities"]["executeCommandProvider"]["commands"];
    assert!(
        commands
            .as_array()
            .is_some_and(|c| c.contains(&json!("moat.suggestionAccepted"))),
        "{commands}"
    );

    // Ghost text, accepted: the editor inserts it and runs the item's command.
    server.open(PY_URI, "python", PY_TEXT);
    let item = inline_at_end(&mut server, PY_URI, PY_TEXT);
    let suggestion = item["insertText"].as_str().expect("insertText").to_string();
    let command = &item["command"];
    assert_eq!(command["command"], "moat.suggestionAccepted", "{item}");
    append(&mut server, PY_URI, PY_TEXT, 2, &suggestion);
    let result = server.request(
        "workspace/executeCommand",
        json!({ "command": command["command"], "arguments": command["arguments"] }),
    );
    assert_eq!(result, Value::Null);

    // Ghost text, dismissed: the user types something else and the editor asks again.
    let other = "file:///e2e/project/other.py";
    server.open(other, "python", PY_TEXT);
    let item = inline_at_end(&mut server, other, PY_TEXT);
    let shown = item["insertText"].as_str().unwrap_or_default().to_string();
    let typed = append(&mut server, other, PY_TEXT, 2, "\n\n# zzz");
    assert!(!shown.starts_with('\n'));
    let (line, character) = end_position(&typed, "utf-16");
    server.inline(other, line, character);

    // A menu item accepted in an editor that does not run item commands (Helix): the text
    // inserted is seen when the document closes.
    let third = "file:///e2e/project/third.py";
    server.open(third, "python", PY_TEXT);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let result = server.completion(third, line, character);
    let items = completion_items(&result);
    assert_eq!(items.len(), 1, "{result}");
    assert_eq!(items[0]["command"]["command"], "moat.suggestionAccepted");
    let edit = items[0]["textEdit"].clone();
    let accepted = moat_e2e::apply_edit(PY_TEXT, &edit);
    server.change(third, 2, json!([{ "text": accepted }]));
    server.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": third } }),
    );

    // A bad command is an error, not a crash.
    let error = server.request_error(
        "workspace/executeCommand",
        json!({ "command": "moat.suggestionAccepted", "arguments": ["x"] }),
    );
    assert_eq!(error["code"], -32602, "{error}");
    assert_eq!(server.shutdown_and_exit().code(), Some(0));

    let (text, records) = records(&dir);
    let outcome = |r: &Value| {
        (
            r["method"].as_str().unwrap_or_default().to_string(),
            r["outcome"].as_str().unwrap_or_default().to_string(),
            r["signal"].as_str().unwrap_or_default().to_string(),
        )
    };
    let got: Vec<_> = records.iter().map(outcome).collect();
    let want = |m: &str, o: &str, s: &str| (m.to_string(), o.to_string(), s.to_string());
    assert_eq!(got[0], want("inline", "accepted", "command"), "{text}");
    assert_eq!(
        got[1],
        want("inline", "dismissed", "next_request"),
        "{text}"
    );
    assert!(
        got.contains(&want("completion", "accepted", "close")),
        "{text}"
    );
    for r in &records {
        assert_eq!(r["v"], 1);
        assert_eq!(r["kind"], "suggestion");
        assert_eq!(r["language"], "python");
        assert_eq!(r["client"], "moat-e2e");
        assert_eq!(r["model"], "tiny-llama-test", "{r}");
        assert!(r["latency_ms"].is_u64() && r["shown_chars"].as_u64() > Some(0));
        assert!(r.get("source").is_none(), "no source text by default: {r}");
    }
    assert_eq!(records[0]["accepted_chars"], records[0]["shown_chars"]);
    assert!(records[0]["prompt_tokens"].as_u64() > Some(0), "{text}");
    assert_eq!(
        records[0]["snippets"], 0,
        "no workspace: no repository snippets"
    );
    // No source text anywhere in the file: not the document's, not the suggestion's.
    for line in PY_TEXT.lines().filter(|l| l.trim().len() > 8) {
        assert!(!text.contains(line.trim()), "{line:?} in {text}");
    }
    assert!(!text.contains(&suggestion), "{suggestion:?} in {text}");

    // `moat stats` on what the server wrote.
    let out = Command::new(moat_binary())
        .args(["stats", "--json"])
        .arg(&dir)
        .output()
        .expect("moat stats");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    assert_eq!(stats["suggestions"], records.len());
    assert_eq!(stats["overall"]["accepted"], 2, "{stats}");
    assert_eq!(stats["by_language"][0]["key"], "python");
    assert_eq!(stats["by_language"][0]["shown"], records.len());
    assert!(stats["by_length"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(
        stats["by_latency"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    let out = Command::new(moat_binary())
        .arg("stats")
        .arg(&dir)
        .output()
        .expect("moat stats");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("by language") && table.contains("python"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn partly_accepted_when_its_first_words_are_kept() {
    let dir = tmpdir("partial");
    let mut server = Server::start_ready(&options(&dir));
    server.open(PY_URI, "python", PY_TEXT);
    let item = inline_at_end(&mut server, PY_URI, PY_TEXT);
    let shown = item["insertText"].as_str().expect("insertText").to_string();
    let word: String = shown.chars().take_while(|c| c.is_alphanumeric()).collect();
    assert!(!word.is_empty() && word.len() < shown.len(), "{shown:?}");
    // Typing the first word through: the rest is still the same suggestion.
    let typed = append(&mut server, PY_URI, PY_TEXT, 2, &word);
    let rest = inline_at_end(&mut server, PY_URI, &typed);
    assert_eq!(
        rest["command"], item["command"],
        "one suggestion while typed through"
    );
    // Then something else: the word was kept, the rest not.
    let typed = append(&mut server, PY_URI, &typed, 3, ".");
    let (line, character) = end_position(&typed, "utf-16");
    server.inline(PY_URI, line, character);
    assert_eq!(server.shutdown_and_exit().code(), Some(0));

    let (text, records) = records(&dir);
    let r = &records[0];
    assert_eq!(
        (r["outcome"].as_str(), r["signal"].as_str()),
        (Some("partial"), Some("next_request")),
        "{text}"
    );
    assert_eq!(r["accepted_chars"], word.chars().count(), "{text}");
    assert_eq!(r["shown_chars"], shown.chars().count(), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn source_text_only_when_turned_on() {
    let dir = tmpdir("source");
    let options =
        options(&dir).init_options(json!({ "debounceMs": 0, "feedbackSourceText": true }));
    let mut server = Server::start_ready(&options);
    server.open(PY_URI, "python", PY_TEXT);
    let item = inline_at_end(&mut server, PY_URI, PY_TEXT);
    let suggestion = item["insertText"].as_str().expect("insertText").to_string();
    append(&mut server, PY_URI, PY_TEXT, 2, &suggestion);
    assert_eq!(server.shutdown_and_exit().code(), Some(0));

    let (text, records) = records(&dir);
    assert_eq!(records.len(), 1, "{text}");
    let r = &records[0];
    assert_eq!(
        (r["outcome"].as_str(), r["signal"].as_str()),
        (Some("accepted"), Some("shutdown"))
    );
    assert_eq!(r["source"]["prefix"], PY_TEXT);
    assert_eq!(r["source"]["text"], suggestion.as_str());
    assert_eq!(r["source"]["path"], "/e2e/project/read.py");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn turned_off_nothing_is_written() {
    for (name, options) in [
        (
            "setting",
            options(&tmpdir("off-setting"))
                .init_options(json!({ "debounceMs": 0, "feedback": false })),
        ),
        (
            "env",
            Options::default()
                .env("MOAT_FEEDBACK", "0")
                .env("MOAT_FEEDBACK_DIR", tmpdir("off-env").display()),
        ),
    ] {
        let dir = tmpdir(&format!("off-{name}"));
        let mut server = Server::start_ready(&options);
        server.open(PY_URI, "python", PY_TEXT);
        let item = inline_at_end(&mut server, PY_URI, PY_TEXT);
        assert!(
            item.get("command").is_none_or(Value::is_null),
            "{name}: {item}"
        );
        let suggestion = item["insertText"].as_str().expect("insertText").to_string();
        let now = append(&mut server, PY_URI, PY_TEXT, 2, &suggestion);
        let (line, character) = end_position(&now, "utf-16");
        server.inline(PY_URI, line, character);
        assert_eq!(server.shutdown_and_exit().code(), Some(0));
        let files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.count())
            .into_iter()
            .collect();
        assert_eq!(
            files,
            vec![0],
            "{name}: nothing written in {}",
            dir.display()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
