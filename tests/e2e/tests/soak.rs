//! Soak (issue 16): a long typing run against the real server — a keystroke and an inline
//! request each time, an explicit `$/cancelRequest` every 8th, every 4th waited for, a switch
//! to another of five files every 250, a file changed on disk and re-indexed (and a `didSave`)
//! every 500 — with every request answered (a result or "cancelled") and the process's memory,
//! threads and open files measured from `/proc` after warm-up and at the end.
//!
//! Quick run (CI): 2,500 keystrokes (1,000 of warm-up), both variants. Long run (README, release
//! binary): `cargo build --release -p moat && MOAT_SOAK_KEYSTROKES=10000 cargo test --release -p
//! moat-e2e --test soak -- --nocapture --test-threads 1`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use moat_e2e::{Options, Server, TempDir, Value, answer_kind, json, percentile};

/// What `/proc` says about the server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kb: u64,
    /// Of which anonymous memory (heap): what a leak grows. The rest is mapped files (the
    /// model, the index's segments), which the kernel may drop and reload.
    anon_kb: u64,
    threads: u64,
    fds: usize,
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    Sample {
        rss_kb: field("VmRSS:"),
        anon_kb: field("RssAnon:"),
        threads: field("Threads:"),
        fds,
    }
}

const FILES: usize = 5;

/// How long the server is left alone before a sample: memory is measured at rest, after moat
/// has handed free memory back (one second without work; `server/moat/src/malloc.rs`).
const AT_REST: Duration = Duration::from_millis(1500);

/// A little more than how long tokio keeps an idle blocking thread (its default, which
/// `moat serve` keeps).
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(11);

fn seed_text(i: usize) -> String {
    format!(
        "import os\n\n\ndef helper_{i}(path, mode):\n    with open(path, mode) as handle:\n        return handle.read()\n\n\nclass Store{i}:\n    def __init__(self, root):\n        self.root = root\n\n"
    )
}

/// The text typed, over and over.
const TYPED: &str = "    def load(self, name):\n        data = helper(os.path.join(self.root, name), \"r\")\n        return data.strip()\n\n";

fn workspace() -> TempDir {
    let dir = TempDir::new("soak-ws");
    for i in 0..FILES {
        std::fs::write(dir.path().join(format!("mod{i}.py")), seed_text(i)).expect("write");
    }
    for i in 0..40 {
        std::fs::write(
            dir.path().join(format!("lib{i}.py")),
            format!("def library_function_{i}(a, b):\n    return a + b * {i}\n"),
        )
        .expect("write");
    }
    dir
}

struct Doc {
    uri: String,
    text: String,
    version: i64,
    typed: usize,
}

fn end_of(text: &str) -> (u32, u32) {
    let line = text.matches('\n').count() as u32;
    let last = text.rsplit('\n').next().unwrap_or_default();
    (line, last.encode_utf16().count() as u32)
}

/// Waits for the responses to `ids`; counts results and cancellations; fails on anything else.
fn settle(server: &mut Server, ids: &mut Vec<i64>, tally: &mut BTreeMap<&'static str, usize>) {
    for id in ids.drain(..) {
        let response = server.response_within(id, Duration::from_secs(30));
        *tally.entry(answer_kind(&response)).or_default() += 1;
    }
}

#[test]
fn a_long_typing_run_leaks_nothing() {
    soak(json!({ "repoContext": false }));
}

/// The same with repository context (snippets from the index and the other open files open
/// every prompt). Its memory grew +29–85% over 10,000 keystrokes with glibc's default of up to
/// 8 malloc arenas per core, the memory in use flat: large blocks of changing sizes (the index
/// writer's buffers, logits rows, retrieval's scorers) freed into a dozen arenas that each kept
/// them. `moat` now runs with one arena (`server/moat/src/malloc.rs`); `MALLOC_ARENA_MAX=16` in
/// the environment brings the old behaviour back, for comparison.
#[test]
fn a_long_typing_run_with_repository_context_leaks_nothing() {
    soak(json!({ "repoContext": true }));
}

fn soak(extra_settings: Value) {
    let keystrokes: usize = std::env::var("MOAT_SOAK_KEYSTROKES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2500);
    let ws = workspace();
    let mut settings = json!({ "debounceMs": 0, "maxTokens": 16 });
    for (k, v) in extra_settings.as_object().cloned().unwrap_or_default() {
        settings[k] = v;
    }
    if let Some(extra) = std::env::var("MOAT_SOAK_SETTINGS")
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v.as_object().cloned())
    {
        for (k, v) in extra {
            settings[k] = v;
        }
    }
    let options = Options::default().root(ws.path()).init_options(settings);
    let mut server = Server::start_ready(&options);
    let pid = server.pid();
    let mut docs: Vec<Doc> = (0..FILES)
        .map(|i| {
            let path = ws.path().join(format!("mod{i}.py"));
            let text = seed_text(i);
            let uri = format!("file://{}", path.display());
            server.open(&uri, "python", &text);
            Doc {
                uri,
                text,
                version: 1,
                typed: 0,
            }
        })
        .collect();
    // Warm-up: caches, the allocator's pools and the model's buffers fill in the first
    // thousand keystrokes (or tenth of the run).
    let warm_up = (keystrokes / 10).max(1000).min(keystrokes / 2);
    // Keystrokes between index updates (0: none), for isolating a growth.
    let update_every: usize = std::env::var("MOAT_SOAK_UPDATE_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let mut warm: Option<Sample> = None;
    let mut tally = BTreeMap::new();
    let mut pending = Vec::new();
    let mut latencies = Vec::new();
    let mut current = 0;
    let started = Instant::now();
    let typed: Vec<char> = TYPED.chars().collect();
    for k in 0..keystrokes {
        if k > 0 && k % 250 == 0 {
            current = (current + 1) % FILES;
        }
        if k > 0 && update_every > 0 && k % update_every == 0 {
            // A file changes on disk: the index updates it.
            let path = ws.path().join(format!("lib{}.py", k % 40));
            std::fs::write(&path, format!("def changed_{k}(x):\n    return x\n")).expect("write");
            server.notify(
                "workspace/didChangeWatchedFiles",
                json!({ "changes": [{ "uri": format!("file://{}", path.display()), "type": 2 }] }),
            );
            let doc = &docs[current];
            server.notify(
                "textDocument/didSave",
                json!({ "textDocument": { "uri": doc.uri } }),
            );
        }
        let doc = &mut docs[current];
        // Keep each document's size bounded: after a few rounds, back to its seed text.
        if doc.typed > 0 && doc.typed.is_multiple_of(typed.len() * 4) {
            doc.text = seed_text(current);
            doc.version += 1;
            server.change(&doc.uri, doc.version, json!([{ "text": doc.text }]));
        }
        let c = typed[doc.typed % typed.len()];
        doc.typed += 1;
        let (line, character) = end_of(&doc.text);
        let at = json!({ "line": line, "character": character });
        doc.version += 1;
        server.change(
            &doc.uri,
            doc.version,
            json!([{ "range": { "start": at, "end": at }, "text": c.to_string() }]),
        );
        doc.text.push(c);
        let (line, character) = end_of(&doc.text);
        let sent = Instant::now();
        let id = server.send_inline(&doc.uri, line, character);
        if k % 8 == 7 {
            server.notify("$/cancelRequest", json!({ "id": id }));
        }
        if k % 4 == 3 {
            let response = server.response_within(id, Duration::from_secs(30));
            latencies.push(sent.elapsed());
            *tally.entry(answer_kind(&response)).or_default() += 1;
            settle(&mut server, &mut pending, &mut tally);
        } else {
            pending.push(id);
        }
        if std::env::var_os("MOAT_SOAK_TRACE").is_some() && k % 1000 == 999 {
            eprintln!("soak: {} keystrokes: {:?}", k + 1, sample(pid));
        }
        if k + 1 == warm_up {
            settle(&mut server, &mut pending, &mut tally);
            std::thread::sleep(AT_REST);
            warm = Some(sample(pid));
        }
    }
    settle(&mut server, &mut pending, &mut tally);
    std::thread::sleep(AT_REST);
    let end = sample(pid);
    let warm = warm.expect("warm-up sample");
    let elapsed = started.elapsed();
    latencies.sort();
    let answered: usize = tally.values().sum();
    eprintln!(
        "soak: {keystrokes} keystrokes in {:.1} s, {answered} requests answered {tally:?}; \
         waited-for latency p50 {:?} p95 {:?} max {:?}; RSS {} -> {} KiB ({:+.1}%; anonymous {} -> {} KiB), threads {} -> {}, fds {} -> {}",
        elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or_default(),
        warm.rss_kb,
        end.rss_kb,
        (end.rss_kb as f64 / warm.rss_kb as f64 - 1.0) * 100.0,
        warm.anon_kb,
        end.anon_kb,
        warm.threads,
        end.threads,
        warm.fds,
        end.fds,
    );
    assert_eq!(answered, keystrokes, "every request is answered");
    assert!(
        end.rss_kb as f64 <= warm.rss_kb as f64 * 1.10,
        "RSS grew more than 10% after warm-up: {warm:?} -> {end:?}"
    );
    assert!(end.fds <= warm.fds, "open files grew: {warm:?} -> {end:?}");
    // The runtime's pool of blocking threads grows with the most requests ever in flight at
    // once and lets an idle thread go after 10 s: more threads than at warm-up are growth only
    // if they are still there once the idle ones have left.
    let threads = if end.threads > warm.threads + 2 {
        std::thread::sleep(BLOCKING_KEEP_ALIVE);
        sample(pid).threads
    } else {
        end.threads
    };
    assert!(
        threads <= warm.threads + 2,
        "threads grew: {warm:?} -> {end:?}, {threads} after {BLOCKING_KEEP_ALIVE:?} at rest"
    );
    assert_eq!(server.shutdown_and_exit().code(), Some(0));
}
