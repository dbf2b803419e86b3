//! The shipped default model (Qwen2.5-Coder-0.5B-Instruct, imported by `scripts/setup.sh` into
//! `$MOAT_HOME/models/default`) served by the real binary: ghost text and completion items that a
//! user would keep, on fixtures in three languages.
//!
//! The default model is installed by the setup, not committed. These tests skip with a message
//! when it is absent, unless `MOAT_REQUIRE_DEFAULT_MODEL=1` (set by `scripts/test.sh`, so CI
//! fails instead of skipping).

use moat_e2e::{Options, Server, completion_items, end_position, inline_items};

/// The suggestion at the end of `text` (the cursor after the last line's indentation).
fn inline_at_end(server: &mut Server, uri: &str, language: &str, text: &str) -> String {
    server.open(uri, language, text);
    let (line, character) = end_position(text, "utf-16");
    let result = server.inline(uri, line, character);
    let items = inline_items(&result);
    assert_eq!(
        items.len(),
        1,
        "no suggestion: {result}\n{}",
        server.stderr_log()
    );
    items[0]["insertText"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_default_model_completes_real_code_in_three_languages() {
    let Some(model) = moat_model::default_model_for_tests("default_model") else {
        return;
    };
    // The full prompt's answers: the cold-prompt budget (a short prompt when the full one would
    // take longer than `coldPromptMs` at this machine's measured speed) depends on the machine's
    // load, which a test must not. It has its own tests (complete/tests/cold_prompt.rs) and is
    // measured in latency.rs.
    let options = Options::default()
        .model(model)
        .init_options(serde_json::json!({ "debounceMs": 0, "coldPromptMs": 0 }));
    let mut server = Server::start_ready(&options);

    let python = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n\n\ndef circle_circumference(radius):\n    ";
    let got = inline_at_end(
        &mut server,
        "file:///e2e/default/geometry.py",
        "python",
        python,
    );
    assert!(
        !got.starts_with('\n') && !got.starts_with(' '),
        "a suggestion on an indented empty line starts at the cursor: {got:?}"
    );
    let first = got.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("return") && first.contains("math.pi") && first.contains("radius"),
        "python: {got:?}"
    );

    let rust = "pub struct Point {\n    pub x: f64,\n    pub y: f64,\n}\n\nimpl Point {\n    pub fn distance(&self, other: &Point) -> f64 {\n        let dx = self.x - other.x;\n        let dy = self.y - other.y;\n        ";
    let got = inline_at_end(&mut server, "file:///e2e/default/point.rs", "rust", rust);
    let first = got.lines().next().unwrap_or_default();
    assert!(
        first.contains("dx * dx") && first.contains("dy * dy"),
        "rust: {got:?}"
    );

    let ts = "export function sum(values: number[]): number {\n  let total = 0;\n  for (const v of values) {\n    ";
    let got = inline_at_end(&mut server, "file:///e2e/default/sum.ts", "typescript", ts);
    assert!(
        got.lines()
            .next()
            .unwrap_or_default()
            .contains("total += v"),
        "typescript: {got:?}"
    );

    // The same model through textDocument/completion (Helix, older clients): the item replaces
    // the word before the cursor with word + suggestion.
    let uri = "file:///e2e/default/geometry_again.py";
    let typed = format!("{python}ret");
    server.open(uri, "python", &typed);
    let (line, character) = end_position(&typed, "utf-16");
    let result = server.completion(uri, line, character);
    let items = completion_items(&result);
    assert_eq!(items.len(), 1, "{result}");
    let new_text = items[0]["textEdit"]["newText"].as_str().unwrap_or_default();
    assert!(new_text.starts_with("return"), "{result}");
    assert!(new_text.contains("radius"), "{result}");

    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}
