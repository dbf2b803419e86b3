//! `workspace/didChangeConfiguration`: the master switch and per-language switches.

use moat_e2e::fixture::{PY_TEXT, PY_URI};
use moat_e2e::{Options, Server, completion_items, end_position, inline_items, json};

const RS_URI: &str = "file:///e2e/project/src/lib.rs";
const RS_TEXT: &str =
    "use std::collections::HashMap;\n\nfn main() {\n    let mut map = HashMap::new();\n    map.ins";

fn counts(server: &mut Server, uri: &str, text: &str) -> (usize, usize) {
    let (line, character) = end_position(text, "utf-16");
    let inline = inline_items(&server.inline(uri, line, character)).len();
    let completion = completion_items(&server.completion(uri, line, character)).len();
    (inline, completion)
}

fn configure(server: &mut Server, settings: serde_json::Value) {
    server.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": settings }),
    );
}

#[test]
fn enable_false_and_disabled_languages() {
    let mut server = Server::start_ready(&Options::default());
    server.open(PY_URI, "python", PY_TEXT);
    server.open(RS_URI, "rust", RS_TEXT);
    assert_eq!(counts(&mut server, PY_URI, PY_TEXT), (1, 1));
    assert_eq!(counts(&mut server, RS_URI, RS_TEXT), (1, 1));

    configure(
        &mut server,
        json!({ "moat": { "enable": false, "debounceMs": 0 } }),
    );
    assert_eq!(counts(&mut server, PY_URI, PY_TEXT), (0, 0));
    assert_eq!(counts(&mut server, RS_URI, RS_TEXT), (0, 0));

    configure(
        &mut server,
        // Settings merge: keys left out keep their value, so `enable` must be turned back on.
        json!({ "moat": { "enable": true, "disabledLanguages": ["python"], "debounceMs": 0 } }),
    );
    assert_eq!(counts(&mut server, PY_URI, PY_TEXT), (0, 0));
    assert_eq!(counts(&mut server, RS_URI, RS_TEXT), (1, 1));

    // A bad value is reported and the previous settings are kept.
    configure(&mut server, json!({ "moat": { "maxTokens": "lots" } }));
    let message = server.wait_for_notification("window/showMessage");
    assert!(
        message["message"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid moat settings"),
        "{message}"
    );
    assert_eq!(message["type"], 2, "a warning: {message}");
    assert_eq!(counts(&mut server, PY_URI, PY_TEXT), (0, 0));
    assert_eq!(counts(&mut server, RS_URI, RS_TEXT), (1, 1));

    // Back on.
    configure(&mut server, json!({ "moat": { "disabledLanguages": [] } }));
    assert_eq!(counts(&mut server, PY_URI, PY_TEXT), (1, 1));
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

#[test]
fn initialization_options_apply_from_the_start() {
    let mut server = Server::start_ready(
        &Options::default().init_options(json!({ "debounceMs": 0, "enabledLanguages": ["rust"] })),
    );
    server.open(PY_URI, "python", PY_TEXT);
    server.open(RS_URI, "rust", RS_TEXT);
    assert_eq!(counts(&mut server, PY_URI, PY_TEXT), (0, 0));
    assert_eq!(counts(&mut server, RS_URI, RS_TEXT), (1, 1));
}
