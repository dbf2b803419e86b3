//! End-to-end latency over LSP with the default model (a measurement, not a CI test: run it on a
//! quiet machine, it prints a JSON summary):
//!
//!   cargo build --release -p moat && MOAT_BIN=target/release/moat \
//!     cargo test --release -p moat-e2e --test latency -- --ignored --nocapture
//!
//! - first suggestion: a ~1k-token file (a slice of bench/fixtures/typing_sample.rs) is opened,
//!   the user pauses 1 s, then asks at the end of the file, or at a line in its middle.
//! - typing: in a ~1k-token file open a while, a code line is removed, the user pauses 2 s there,
//!   then types it again, one `didChange` and one `inlineCompletion` per keystroke every
//!   `MOAT_TYPING_INTERVAL_MS` (default 80 ms), earlier requests superseded (-32800); timed: the
//!   last keystroke's request until its answer. And the slow typist: each keystroke's request
//!   answered before the next keystroke.
//!
//! Each runs in three configurations (`MOAT_LATENCY_VARIANTS` picks some): the defaults; the
//! cold-prompt budget off (`coldPromptMs: 0`: a request computes its whole prompt, however
//! long); and neither the budget nor the background prefill (`MOAT_PREFILL=0`).

use std::time::{Duration, Instant};

use moat_e2e::{Options, Server, repo_root};
use serde_json::{Value, json};

/// About 1k tokens of the fixture starting at line `from`, cut at a line end.
fn slice(fixture: &str, from: usize, bytes: usize) -> String {
    let mut out = String::new();
    for line in fixture.split_inclusive('\n').skip(from) {
        if out.len() + line.len() > bytes {
            break;
        }
        out.push_str(line);
    }
    out
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

fn summary(v: &[f64]) -> Value {
    json!({
        "n": v.len(),
        "p50_ms": (percentile(v, 50.0) * 10.0).round() / 10.0,
        "p95_ms": (percentile(v, 95.0) * 10.0).round() / 10.0,
        "min_ms": (v.iter().copied().fold(f64::INFINITY, f64::min) * 10.0).round() / 10.0,
        "max_ms": (v.iter().copied().fold(0.0, f64::max) * 10.0).round() / 10.0,
    })
}

/// Code lines worth typing: 20–70 bytes of code, not comments, in the file's second half.
fn typing_lines(text: &str) -> Vec<(u32, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .skip(lines.len() / 2)
        .filter_map(|(i, l)| {
            let code = l.trim();
            ((20..=70).contains(&code.len()) && code.is_ascii() && !code.starts_with("//"))
                .then(|| (i as u32, l.len() - l.trim_start().len(), code.to_string()))
        })
        .take(6)
        .collect()
}

/// The server's resident memory now, MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| (kib / 1024.0).round())
}

/// Milliseconds from the request to its answer; the answer's text goes to `answers`.
fn timed(
    server: &mut Server,
    uri: &str,
    line: u32,
    character: u32,
    answers: &mut Vec<String>,
) -> f64 {
    let start = Instant::now();
    let id = server.send_inline(uri, line, character);
    let response = server.response_within(id, Duration::from_secs(60));
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert!(response.get("error").is_none(), "{response}");
    let text = response["result"]["items"][0]["insertText"]
        .as_str()
        .unwrap_or_default();
    answers.push(text.to_string());
    ms
}

/// One configuration of the server: its name, the background prefill on or off, `coldPromptMs`.
struct Variant {
    name: &'static str,
    prefill: bool,
    cold_prompt_ms: u64,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "default",
        prefill: true,
        cold_prompt_ms: 150,
    },
    Variant {
        name: "no-cold-budget",
        prefill: true,
        cold_prompt_ms: 0,
    },
    Variant {
        name: "no-prefill",
        prefill: false,
        cold_prompt_ms: 0,
    },
];

fn run(model: &std::path::Path, variant: &Variant, fixture: &str) -> Value {
    let options = Options::default()
        .model(model)
        .init_options(json!({ "coldPromptMs": variant.cold_prompt_ms }))
        .env("MOAT_PREFILL", if variant.prefill { "1" } else { "0" });
    let mut server = Server::start_ready(&options);
    let interval = std::env::var("MOAT_TYPING_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80u64);

    // First suggestion after opening a ~1k-token file and pausing 1 s.
    let (mut at_end, mut in_middle, mut answers) = (Vec::new(), Vec::new(), Vec::new());
    // The server's resident memory after each first suggestion, then after each typed line.
    let mut rss = vec![rss_mib(server.pid())];
    for (n, from) in [0usize, 120, 240, 360].into_iter().enumerate() {
        let text = slice(fixture, from, 3600);
        let lines = text.lines().count() as u32;
        let uri = format!("file:///bench/open-end-{n}.rs");
        server.open(&uri, "rust", &text);
        std::thread::sleep(Duration::from_secs(1));
        at_end.push(timed(&mut server, &uri, lines, 0, &mut answers));
        rss.push(rss_mib(server.pid()));
        let uri = format!("file:///bench/open-middle-{n}.rs");
        server.open(&uri, "rust", &text);
        std::thread::sleep(Duration::from_secs(1));
        let middle = text.lines().nth(lines as usize / 2).unwrap_or_default();
        let indent = (middle.len() - middle.trim_start().len()) as u32;
        in_middle.push(timed(&mut server, &uri, lines / 2, indent, &mut answers));
        rss.push(rss_mib(server.pid()));
    }

    // Typing lines into a ~1k-token file open a while.
    let text = slice(fixture, 60, 3600);
    let uri = "file:///bench/typing.rs";
    server.open(uri, "rust", &text);
    std::thread::sleep(Duration::from_secs(2));
    let mut version = 1;
    let (mut last, mut each) = (Vec::new(), Vec::new());
    for (line, indent, code) in typing_lines(&text) {
        let start = json!({ "line": line, "character": indent });
        let end = json!({ "line": line, "character": indent + code.len() });
        for slow in [false, true] {
            version += 1;
            server.change(
                uri,
                version,
                json!([{ "range": { "start": start, "end": end }, "text": "" }]),
            );
            std::thread::sleep(Duration::from_secs(2));
            let mut pending = None;
            for (i, c) in code.chars().enumerate() {
                if i > 0 && !slow {
                    std::thread::sleep(Duration::from_millis(interval));
                }
                let character = (indent + i) as u32;
                version = server.type_at(uri, version, line, character, &c.to_string());
                let sent = Instant::now();
                let id = server.send_inline(uri, line, character + 1);
                if slow {
                    let r = server.response_within(id, Duration::from_secs(60));
                    assert!(r.get("error").is_none(), "{r}");
                    each.push(sent.elapsed().as_secs_f64() * 1000.0);
                } else {
                    pending = Some((id, sent));
                }
            }
            if let Some((id, sent)) = pending {
                let r = server.response_within(id, Duration::from_secs(60));
                assert!(r.get("error").is_none(), "{r}");
                last.push(sent.elapsed().as_secs_f64() * 1000.0);
                rss.push(rss_mib(server.pid()));
            }
        }
    }
    // The server's peak RSS (all documents' KV caches included).
    let peak_rss_mib = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| (kib / 1024.0).round());
    server.shutdown_and_exit();
    json!({
        "variant": variant.name,
        "rss_trace_mib": rss,
        "prefill": variant.prefill,
        "cold_prompt_ms": variant.cold_prompt_ms,
        "server_peak_rss_mib": peak_rss_mib,
        "first_after_open_1s": {
            "at_end": summary(&at_end),
            "in_middle": summary(&in_middle),
            "at_end_ms": at_end,
            "in_middle_ms": in_middle,
            "answers": answers,
        },
        "typing": {
            "interval_ms": interval,
            "last_keystroke": summary(&last),
            "each_keystroke_answered": summary(&each),
        },
    })
}

#[test]
#[ignore = "a measurement: run it by hand (see the file's header)"]
fn latency_over_lsp() {
    let Some(model) = moat_model::default_model_for_tests("latency") else {
        return;
    };
    let fixture = std::fs::read_to_string(repo_root().join("bench/fixtures/typing_sample.rs"))
        .expect("fixture");
    // `MOAT_LATENCY_VARIANTS=default,no-prefill` picks some; all by default.
    let wanted = std::env::var("MOAT_LATENCY_VARIANTS").unwrap_or_default();
    let mut runs = Vec::new();
    for variant in VARIANTS
        .iter()
        .filter(|v| wanted.is_empty() || wanted.split(',').any(|w| w == v.name))
    {
        let r = run(&model, variant, &fixture);
        eprintln!("{r}");
        runs.push(r);
    }
    let report = json!({ "runs": runs, "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim() });
    eprintln!("{report:#}");
    if let Ok(path) = std::env::var("MOAT_LATENCY_JSON") {
        std::fs::write(path, report.to_string()).expect("write report");
    }
}
