//! The workspace index through the server: indexing after `initialized` (reported with
//! `moat/status`), `workspace/symbol`, updates from `didChangeWatchedFiles`, secrets never indexed.

use std::time::{Duration, Instant};

use moat_e2e::{Options, Server, TempDir};
use serde_json::{Value, json};

fn wait_indexed(server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) =
            server.try_wait_for_notification("moat/status", Duration::from_secs(1))
            && status["state"] == "indexed"
        {
            return;
        }
    }
    panic!(
        "the workspace was not indexed in time:\n{}",
        server.stderr_log()
    );
}

fn symbols(server: &mut Server, query: &str) -> Vec<Value> {
    let result = server.request("workspace/symbol", json!({ "query": query }));
    result.as_array().cloned().unwrap_or_default()
}

#[test]
fn workspace_is_indexed_searched_and_updated() {
    let dir = TempDir::new("workspace");
    let root = dir.path();
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::write(
        root.join("lib/checksum.py"),
        "def compute_checksum(data):\n    \"\"\"Adler-style checksum.\"\"\"\n    return sum(data) % 65521\n",
    )
    .unwrap();
    std::fs::write(
        root.join(".env"),
        "API_KEY=sk-live-0123456789abcdefghijklmnop\ndef leaked_function(): pass\n",
    )
    .unwrap();
    std::fs::write(
        root.join("main.py"),
        "from lib.checksum import compute_checksum\n\nvalue = \n",
    )
    .unwrap();

    let mut server = Server::start(&Options::default().root(root));
    wait_indexed(&mut server);

    let found = symbols(&mut server, "compute_checksum");
    assert!(
        found.iter().any(|s| s["name"] == "compute_checksum"
            && s["location"]["uri"]
                .as_str()
                .unwrap_or_default()
                .ends_with("lib/checksum.py")),
        "{found:?}"
    );
    assert!(
        symbols(&mut server, "leaked_function").is_empty(),
        ".env files are never indexed"
    );

    // A file created on disk and reported by the client's watcher is picked up.
    std::fs::write(
        root.join("lib/fresh.py"),
        "def fresh_function(x):\n    return x\n",
    )
    .unwrap();
    let uri = format!("file://{}", root.join("lib/fresh.py").display());
    server.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": uri, "type": 1 }] }),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while symbols(&mut server, "fresh_function").is_empty() {
        assert!(Instant::now() < deadline, "the new file was not indexed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Completions still work with repository context.
    let main_uri = format!("file://{}", root.join("main.py").display());
    server.open(
        &main_uri,
        "python",
        "from lib.checksum import compute_checksum\n\nvalue = \n",
    );
    let result = server.inline(&main_uri, 2, 8);
    assert!(result.is_object() || result.is_array(), "{result}");
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}
