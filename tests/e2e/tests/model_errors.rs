//! A missing or broken model: the server says so (`moat/status` error, `window/showMessage`),
//! answers completion requests with empty results, and still shuts down cleanly. Also: with
//! `loadWaitMs: 0`, requests while the model is still loading are answered at once, empty (by
//! default they wait for the model: see `loading.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use moat_e2e::fixture::{PY_TEXT, PY_URI};
use moat_e2e::{Options, Server, TempDir, completion_items, end_position, inline_items, json};

/// Starts a server on `model`, expects an error naming `needle`, checks it keeps serving.
fn expect_model_error(model: &Path, needle: &str) {
    let mut server = Server::start(&Options::default().model(model));
    let status = server.wait_for_status();
    assert_eq!(status["state"], "error", "{status}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
    let shown = server.wait_for_notification("window/showMessage");
    assert_eq!(shown["type"], 1, "an error: {shown}");
    assert!(
        shown["message"]
            .as_str()
            .unwrap_or_default()
            .contains(needle),
        "{shown}"
    );

    server.open(PY_URI, "python", PY_TEXT);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let started = Instant::now();
    assert!(inline_items(&server.inline(PY_URI, line, character)).is_empty());
    assert!(completion_items(&server.completion(PY_URI, line, character)).is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

#[test]
fn missing_model() {
    expect_model_error(
        Path::new("/nonexistent/moat-model"),
        "/nonexistent/moat-model",
    );
}

#[test]
fn garbage_onnx_file() {
    let dir = TempDir::with_model_copy("tiny-llama");
    std::fs::write(
        dir.path().join("model.onnx"),
        b"this is not an onnx model\0\x01\x02",
    )
    .expect("write");
    expect_model_error(dir.path(), "model.onnx");
}

fn model_with_num_layers(layers: usize) -> TempDir {
    let dir = TempDir::with_model_copy("tiny-llama");
    let toml = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&toml).expect("model.toml");
    assert!(text.contains("num_layers = 2"));
    let text = text.replace("num_layers = 2", &format!("num_layers = {layers}"));
    std::fs::write(&toml, text).expect("write");
    dir
}

#[test]
fn manifest_with_too_many_layers() {
    let dir = model_with_num_layers(3);
    expect_model_error(dir.path(), "does not match the ONNX model");
}

#[test]
fn manifest_with_too_few_layers() {
    let dir = model_with_num_layers(1);
    expect_model_error(dir.path(), "num_layers");
}

#[test]
fn manifest_that_does_not_parse() {
    let dir = TempDir::with_model_copy("tiny-llama");
    std::fs::write(dir.path().join("model.toml"), "[model]\nname = \n").expect("write");
    expect_model_error(dir.path(), "model.toml");
}

#[test]
fn missing_tokenizer() {
    let dir = TempDir::with_model_copy("tiny-gpt2");
    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("remove");
    expect_model_error(dir.path(), "tokenizer.json");
}

/// With `loadWaitMs: 0`, requests made while the model loads (slowly: the test-only load delay)
/// get an empty answer at once; once it is ready they get suggestions.
#[test]
fn requests_while_loading_with_load_wait_0_are_answered_empty_at_once() {
    let mut server = Server::start(
        &Options::default()
            .load_delay_ms(3000)
            .init_options(json!({ "debounceMs": 0, "loadWaitMs": 0 })),
    );
    let status = server.wait_for_notification("moat/status");
    assert_eq!(status["state"], "loading", "{status}");
    server.open(PY_URI, "python", PY_TEXT);
    let (line, character) = end_position(PY_TEXT, "utf-16");
    let started = Instant::now();
    assert!(inline_items(&server.inline(PY_URI, line, character)).is_empty());
    assert!(completion_items(&server.completion(PY_URI, line, character)).is_empty());
    assert!(started.elapsed() < Duration::from_secs(2));

    let status = server.wait_for_status();
    assert_eq!(status["state"], "ready", "{status}");
    assert!(server.inline_text(PY_URI, line, character).is_some());
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}
