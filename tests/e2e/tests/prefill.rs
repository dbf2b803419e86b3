//! The background prefill over LSP (tiny-llama, deterministic): after a document opens, and after
//! the user pauses at an edit elsewhere, the prompt of a request at that place is already in the
//! KV cache: the request computes only its last token or two. Read from the server's debug log.

use std::time::{Duration, Instant};

use moat_e2e::{Options, Server, end_position};
use serde_json::json;

/// `(prompt, reused)` of every `completion` debug line so far.
fn completions(server: &Server) -> Vec<(usize, usize)> {
    server
        .stderr_log()
        .lines()
        .filter(|l| l.contains("completion") && !l.contains("background prefill"))
        .filter_map(|l| {
            let field = |name: &str| -> Option<usize> {
                let rest = &l[l.find(&format!("{name}="))? + name.len() + 1..];
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            };
            Some((field("prompt")?, field("reused")?))
        })
        .collect()
}

fn wait_for_prefills(server: &Server, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.stderr_log().matches("background prefill").count() < count {
        assert!(
            Instant::now() < deadline,
            "no background prefill:\n{}",
            server.stderr_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_request_after_a_pause_finds_its_prompt_prefilled() {
    // The server's log level comes from the test process's MOAT_LOG (this file holds one test).
    unsafe { std::env::set_var("MOAT_LOG", "moat_lsp=debug,info") };
    let mut server = Server::start_ready(&Options::default().init_options(json!({})));
    let uri = "file:///e2e/prefill/shapes.py";
    let text = (0..30)
        .map(|i| format!("def area_{i}(width, height):\n    return width * height * {i}\n\n"))
        .collect::<String>();
    server.open(uri, "python", &text);
    wait_for_prefills(&server, 1);
    let (line, character) = end_position(&text, "utf-16");
    server.inline(uri, line, character);
    let (prompt, reused) = *completions(&server).last().expect("a completion line");
    assert!(
        reused + 2 >= prompt,
        "after the open's prefill: reused {reused} of {prompt}\n{}",
        server.stderr_log()
    );

    // An edit in another region, then a pause: that region is prefilled too.
    server.change(
        uri,
        2,
        json!([{ "range": { "start": { "line": 10, "character": 0 },
                            "end": { "line": 10, "character": 0 } },
                 "text": "def perimeter(width, height):\n    " }]),
    );
    wait_for_prefills(&server, 2);
    server.inline(uri, 11, 4);
    let (prompt, reused) = *completions(&server).last().expect("a completion line");
    assert!(
        reused + 2 >= prompt,
        "after the edit's prefill: reused {reused} of {prompt}\n{}",
        server.stderr_log()
    );
}
