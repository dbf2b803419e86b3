//! Capability negotiation in `initialize`.

use moat_e2e::{Options, Server, Value};

fn capabilities(options: &Options) -> (Value, Server) {
    let server = Server::start(options);
    let caps = server.init_result["capabilities"].clone();
    (caps, server)
}

#[test]
fn utf8_is_chosen_when_offered_with_utf16() {
    let (caps, mut server) = capabilities(&Options::default().encodings(&["utf-16", "utf-8"]));
    assert_eq!(caps["positionEncoding"], "utf-8");
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}

#[test]
fn utf16_is_chosen_when_utf8_is_not_offered() {
    for options in [
        Options::default().no_encodings(),
        Options::default().encodings(&["utf-16"]),
        Options::default().encodings(&["utf-32", "utf-16"]),
        Options::default().encodings(&[]),
    ] {
        let (caps, mut server) = capabilities(&options);
        assert_eq!(
            caps["positionEncoding"], "utf-16",
            "offered {:?}",
            options.position_encodings
        );
        assert_eq!(server.shutdown_and_exit().code(), Some(0));
    }
}

#[test]
fn sync_and_providers() {
    let (caps, mut server) = capabilities(&Options::default());
    let sync = &caps["textDocumentSync"];
    // Either the options object or the bare kind; moat sends the object.
    let change = if sync.is_object() {
        assert_eq!(sync["openClose"], true, "{sync}");
        &sync["change"]
    } else {
        sync
    };
    assert_eq!(change, 2, "incremental sync: {sync}");
    assert!(
        caps["inlineCompletionProvider"] == true || caps["inlineCompletionProvider"].is_object(),
        "{caps}"
    );
    assert!(caps["completionProvider"].is_object(), "{caps}");
    assert_eq!(server.init_result["serverInfo"]["name"], "moat");
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}
