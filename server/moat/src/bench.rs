//! `moat bench`: how fast and how costly the in-process model is on this machine.
//!
//! Owns: the measurements (model load, time to first token by prompt length, decode speed, the
//! per-keystroke latency of the real pipeline while a line is typed, with the KV cache reused and
//! not), peak memory, the cost arithmetic, the optional side-by-side Python onnxruntime baseline,
//! the JSON report and the SVG plot.
//! Must not: change what it measures between runs: the typed file is a frozen fixture
//! (`bench/fixtures/typing_sample.rs`, compiled in), so results stay comparable over history.
//!
//! Definitions:
//! - time to first token (TTFT): an empty cache, a prompt of N tokens of the fixture, one token
//!   generated; the median of several runs.
//! - decode: the cache holds a ~1024-token prompt; each step feeds one token and reads the next
//!   token's logits (`logits_for`); tokens/s = steps / time.
//! - keystroke: the fixture's line after ~1024 tokens is typed one character at a time; each
//!   keystroke is one full pipeline call (incremental tree-sitter reparse + `complete` with the
//!   server's default settings), timed in parts: reparse, model (`generate`), rest of pipeline. "reuse on" is what the server does; "reuse off" empties the KV cache
//!   before each call. The LSP scheduler's debounce is not slept; the end-to-end estimate adds it.
//! - cost: cores × seconds × price per core-hour (compute only; an idle server costs nothing
//!   here), for generated tokens (decode), prompt tokens (prefill at ~1024) and suggestions
//!   (mean keystroke latency).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use moat_complete::{CompletionInput, CompletionSettings, complete};
use moat_model::{
    Backend, CancelToken, GenerateRequest, Generation, Healing, ModelError, ModelTokenizer,
    OnnxBackend,
};
use moat_syntax::{Language, SyntaxTree, TextEdit};
use serde::Serialize;
use serde_json::{Value, json};

use crate::eval::{percentile, today, write_file};

mod llama;
mod speculation;
use crate::{ModelArgs, load_backend, model_path};

/// The frozen file typed in the keystroke benchmark (a copy of moat's own ONNX backend source).
const FIXTURE: &str = include_str!("../../../bench/fixtures/typing_sample.rs");
const FIXTURE_NAME: &str = "bench/fixtures/typing_sample.rs";
/// The Python baseline, compiled in so `moat bench --baseline` works from any folder.
const BASELINE_PY: &str = include_str!("../../../bench/baseline_ort.py");

const PROMPT_LENGTHS: [usize; 5] = [128, 256, 512, 1024, 2048];
const QUICK_LENGTHS: [usize; 2] = [128, 512];
/// Tokens of real code before the typed line.
const KEYSTROKE_CONTEXT: usize = 1024;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Write the JSON report here (default: bench/results/<date>-<model>.json when that folder
    /// exists in the current directory and --quick is not given).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG plot (TTFT vs prompt length, keystroke latency distribution).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Price of one CPU core for one hour, in USD. The default, 0.05, is the conservative end of
    /// on-demand cloud vCPU-hour prices for general-purpose instances (roughly $0.02–0.05).
    #[arg(long, default_value_t = 0.05)]
    price_per_core_hour: f64,
    /// A short run (two prompt lengths, a few keystrokes): for tests and smoke checks.
    #[arg(long)]
    quick: bool,
    /// Also run the same measurements with the onnxruntime Python package, the naive way.
    #[arg(long)]
    baseline: bool,
    /// Python interpreter for --baseline (default: .venv/bin/python if present, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Debounce added to the keystroke latency for the end-to-end estimate (server default).
    #[arg(long, default_value_t = 25)]
    debounce_ms: u64,
    /// llama.cpp's `llama-bench` binary: run it on the same weights (--gguf) beside moat's
    /// keystroke step and TTFT, interleaved (bench/README.md).
    #[arg(long, value_name = "PATH")]
    llama_bench: Option<PathBuf>,
    /// The GGUF for --llama-bench (default: the newest .gguf in moat's downloads folder, the
    /// file the default model was imported from).
    #[arg(long, value_name = "PATH")]
    gguf: Option<PathBuf>,
    /// Prompt lengths for TTFT (default 128,256,512,1024,2048; with --quick 128,512).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    lengths: Vec<usize>,
    /// llama-bench's `--poll` (0–100): how much its threads spin-wait for work. Default 0, as
    /// moat runs (ONNX Runtime's spinning off: an editor's machine shares its cores); 50 is
    /// llama.cpp's own default, which collapses on a machine whose cores are busy.
    #[arg(long, default_value_t = 0)]
    llama_poll: u8,
    /// Rounds of the interleaved keystroke step (moat, then llama.cpp) with --llama-bench, and
    /// of the speculation section (off and on, alternating order). Default 3; the speculation
    /// section runs 1 with --quick.
    #[arg(long)]
    rounds: Option<usize>,
}

/// A backend wrapper that records what the pipeline asked for, so the baseline can replay the
/// exact same prompts.
struct Recorder<'a> {
    inner: &'a OnnxBackend,
    calls: Mutex<Vec<Call>>,
}

#[derive(Debug, Clone, Serialize)]
struct Call {
    prompt: Vec<u32>,
    generated: usize,
    reused: usize,
    computed: usize,
    #[serde(skip)]
    ttft: Duration,
    #[serde(skip)]
    total: Duration,
}

impl Backend for Recorder<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn tokenizer(&self) -> &ModelTokenizer {
        self.inner.tokenizer()
    }
    fn context_length(&self) -> usize {
        self.inner.context_length()
    }
    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError> {
        let g = self.inner.generate(req, cancel)?;
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call {
                prompt: req.prompt.clone(),
                generated: g.tokens.len(),
                reused: g.reused_tokens,
                computed: g.computed_tokens,
                ttft: g.time_to_first_token,
                total: g.total_time,
            });
        }
        Ok(g)
    }
}

#[derive(Debug, Clone, Serialize)]
struct Ttft {
    requested_tokens: usize,
    prompt_tokens: usize,
    ms_median: f64,
    ms_min: f64,
    runs: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Latencies {
    p50_ms: f64,
    p95_ms: f64,
    mean_ms: f64,
    max_ms: f64,
    /// p50 plus the scheduler's debounce: last keystroke → suggestion, estimated.
    end_to_end_p50_ms: f64,
    ttft_p50_ms: f64,
    /// Incremental tree-sitter reparse after the keystroke.
    parse_p50_ms: f64,
    /// Time inside the backend's `generate` (prefill + decode).
    model_p50_ms: f64,
    /// The rest of the pipeline: windows, tokenization, file context, post-processing.
    pipeline_p50_ms: f64,
    prompt_tokens_mean: f64,
    reused_tokens_mean: f64,
    computed_tokens_mean: f64,
    generated_tokens_mean: f64,
    non_empty_suggestions: usize,
    latencies_ms: Vec<f64>,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// `/proc/self/status` field in MiB (Linux), e.g. `VmHWM` (peak RSS) or `VmRSS`.
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round(kib / 1024.0, 1))
}

/// `/proc/loadavg`'s 1-minute figure: other work on the machine skews every number here.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// At least `n` tokens of the fixture (repeated if it is shorter).
fn fixture_tokens(tokenizer: &ModelTokenizer, n: usize) -> Vec<u32> {
    let mut ids = tokenizer.encode(FIXTURE);
    let once = ids.clone();
    while ids.len() < n && !once.is_empty() {
        ids.extend_from_slice(&once);
    }
    ids.truncate(n);
    ids
}

fn measure_ttft(backend: &OnnxBackend, lengths: &[usize], repeats: usize) -> Result<Vec<Ttft>> {
    let max = backend.context_length().saturating_sub(1);
    let mut out: Vec<Ttft> = Vec::new();
    for &requested in lengths {
        let n = requested.min(max);
        if out.iter().any(|t| t.prompt_tokens == n) {
            continue;
        }
        let prompt = fixture_tokens(backend.tokenizer(), n);
        let mut times = Vec::new();
        for _ in 0..repeats {
            backend.reset_cache();
            let req = GenerateRequest {
                prompt: prompt.clone(),
                max_new_tokens: 1,
                first_token_prefix: Healing::none(),
                stop: None,
            };
            let g = backend.generate(&req, &CancelToken::new())?;
            times.push(ms(g.time_to_first_token));
        }
        out.push(Ttft {
            requested_tokens: requested,
            prompt_tokens: prompt.len(),
            ms_median: round(percentile(&times, 50.0), 3),
            ms_min: round(times.iter().copied().fold(f64::INFINITY, f64::min), 3),
            runs: times.len(),
        });
    }
    Ok(out)
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = (f32::NEG_INFINITY, 0u32);
    for (i, &l) in logits.iter().enumerate() {
        if l > best.0 {
            best = (l, i as u32);
        }
    }
    best.1
}

/// Decode steps over a warm cache: (prompt tokens, steps, ms per token).
fn measure_decode(backend: &OnnxBackend, steps: usize) -> Result<(usize, usize, f64)> {
    let n = KEYSTROKE_CONTEXT.min(backend.context_length().saturating_sub(steps + 2));
    let mut ids = fixture_tokens(backend.tokenizer(), n);
    backend.reset_cache();
    let mut logits = backend.logits_for(&ids)?;
    let start = Instant::now();
    for _ in 0..steps {
        ids.push(argmax(&logits));
        logits = backend.logits_for(&ids)?;
    }
    Ok((n, steps, ms(start.elapsed()) / steps.max(1) as f64))
}

/// Tokens already in the KV cache for the keystroke step (clamped to the model's context).
const STEP_DEPTH: usize = 1024;
/// Tokens generated in the keystroke step.
const STEP_GENERATED: usize = 8;

/// The keystroke step, the protocol `llama-bench -p 1 -n 8 -d 1024` measures (bench/README.md):
/// with `depth` tokens in the KV cache, compute one new token, then generate `STEP_GENERATED`
/// (nine model evaluations). Returns (depth, median ms, min ms) over `repeats` runs.
fn measure_step(backend: &OnnxBackend, repeats: usize) -> Result<(usize, f64, f64)> {
    let depth = STEP_DEPTH.min(backend.context_length().saturating_sub(STEP_GENERATED + 2));
    let ids = fixture_tokens(backend.tokenizer(), depth + 1);
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        backend.reset_cache();
        backend.logits_for(&ids[..depth])?;
        let start = Instant::now();
        let mut seq = ids.clone();
        let mut logits = backend.logits_for(&seq)?;
        for _ in 0..STEP_GENERATED {
            seq.push(argmax(&logits));
            logits = backend.logits_for(&seq)?;
        }
        times.push(ms(start.elapsed()));
    }
    times.sort_by(f64::total_cmp);
    Ok((depth, times[times.len() / 2], times[0]))
}

/// The typed line: the first line with 30–80 bytes of ASCII code after ~1024 tokens of fixture.
/// Returns (document without the line's code, cursor at its indentation, the code).
fn typing_setup(tokenizer: &ModelTokenizer, context_tokens: usize) -> (String, usize, String) {
    typing_setup_in(FIXTURE, tokenizer, context_tokens, "//")
}

/// [`typing_setup`] in `fixture`, whose line comments start with `comment`.
fn typing_setup_in(
    fixture: &str,
    tokenizer: &ModelTokenizer,
    context_tokens: usize,
    comment: &str,
) -> (String, usize, String) {
    let ids = tokenizer.encode(fixture);
    let take = context_tokens.min(ids.len().saturating_sub(1));
    let bytes: usize = ids[..take]
        .iter()
        .map(|&id| tokenizer.token_bytes(id).len())
        .sum();
    let mut offset = fixture.floor_char_boundary(bytes.min(fixture.len()));
    offset = fixture[offset..]
        .find('\n')
        .map_or(fixture.len(), |i| offset + i + 1);
    let mut start = offset;
    for line in fixture[offset..].split_inclusive('\n') {
        let code = line.trim();
        if (30..=80).contains(&code.len()) && code.is_ascii() && !code.starts_with(comment) {
            let indent = line.len() - line.trim_start().len();
            let cursor = start + indent;
            let end = cursor + code.len();
            let doc = format!("{}{}", &fixture[..cursor], &fixture[end..]);
            return (doc, cursor, code.to_string());
        }
        start += line.len();
    }
    // A fixture without such a line: type at its end.
    (fixture.to_string(), fixture.len(), "x = 1".to_string())
}

/// Types `code` into `doc` at `cursor` one character at a time; one pipeline call per keystroke.
fn type_line(
    backend: &OnnxBackend,
    doc: &str,
    cursor: usize,
    code: &str,
    reuse: bool,
    debounce_ms: f64,
) -> Result<(Latencies, Vec<Call>)> {
    type_line_in(
        backend,
        (FIXTURE_NAME, Language::Rust),
        doc,
        cursor,
        code,
        reuse,
        debounce_ms,
    )
}

/// [`type_line`] in a file at `path` in `language`.
fn type_line_in(
    backend: &OnnxBackend,
    (path, language): (&str, Language),
    doc: &str,
    cursor: usize,
    code: &str,
    reuse: bool,
    debounce_ms: f64,
) -> Result<(Latencies, Vec<Call>)> {
    let recorder = Recorder {
        inner: backend,
        calls: Mutex::new(Vec::new()),
    };
    let settings = CompletionSettings::default();
    let mut latencies = Vec::new();
    let mut non_empty = 0;
    backend.reset_cache();
    // The request the editor made when the line was opened (not timed): with reuse on, the cache
    // then holds the file's prefix, as it would in the server before the first keystroke.
    let tree = SyntaxTree::parse(language, doc);
    let opened = CompletionInput {
        text: doc,
        cursor,
        path: Some(path),
        language: Some(language),
        tree: tree.as_ref(),
        snippets: &[],
    };
    complete(&opened, &settings, &recorder, &CancelToken::new())?;
    if let Ok(mut c) = recorder.calls.lock() {
        c.clear();
    }
    let mut calls = Vec::new();
    let (mut parse_ms, mut model_ms) = (Vec::new(), Vec::new());
    // As in the server: each keystroke is an incremental edit of the previous tree.
    let mut tree = tree;
    let mut text = doc.to_string();
    for ch in code.chars() {
        let at = text.len() - (doc.len() - cursor);
        let mut buf = [0u8; 4];
        let typed: &str = ch.encode_utf8(&mut buf);
        let edit = TextEdit::replace(&text, at..at, typed);
        text.insert_str(at, typed);
        let at = at + typed.len();
        if !reuse {
            backend.reset_cache();
        }
        let start = Instant::now();
        if let Some(t) = tree.as_mut() {
            t.edit(&edit);
            if !t.reparse(&text) {
                tree = None;
            }
        }
        let parsed = start.elapsed();
        let input = CompletionInput {
            text: &text,
            cursor: at,
            path: Some(path),
            language: Some(language),
            tree: tree.as_ref(),
            snippets: &[],
        };
        let result = complete(&input, &settings, &recorder, &CancelToken::new())?;
        latencies.push(ms(start.elapsed()));
        parse_ms.push(ms(parsed));
        non_empty += usize::from(!result.text.is_empty());
        if let Ok(mut c) = recorder.calls.lock() {
            model_ms.push(c.iter().map(|c| ms(c.total)).sum::<f64>());
            calls.append(&mut c);
        }
    }
    let f = |get: &dyn Fn(&Call) -> f64| mean(&calls.iter().map(get).collect::<Vec<_>>());
    let ttfts: Vec<f64> = calls.iter().map(|c| ms(c.ttft)).collect();
    let stats = Latencies {
        p50_ms: round(percentile(&latencies, 50.0), 3),
        p95_ms: round(percentile(&latencies, 95.0), 3),
        mean_ms: round(mean(&latencies), 3),
        max_ms: round(latencies.iter().copied().fold(0.0, f64::max), 3),
        end_to_end_p50_ms: round(percentile(&latencies, 50.0) + debounce_ms, 3),
        ttft_p50_ms: round(percentile(&ttfts, 50.0), 3),
        parse_p50_ms: round(percentile(&parse_ms, 50.0), 3),
        model_p50_ms: round(percentile(&model_ms, 50.0), 3),
        pipeline_p50_ms: round(
            percentile(
                &latencies
                    .iter()
                    .zip(&parse_ms)
                    .zip(&model_ms)
                    .map(|((l, p), m)| l - p - m)
                    .collect::<Vec<_>>(),
                50.0,
            ),
            3,
        ),
        prompt_tokens_mean: round(f(&|c| c.prompt.len() as f64), 1),
        reused_tokens_mean: round(f(&|c| c.reused as f64), 1),
        computed_tokens_mean: round(f(&|c| c.computed as f64), 1),
        generated_tokens_mean: round(f(&|c| c.generated as f64), 2),
        non_empty_suggestions: non_empty,
        latencies_ms: latencies.iter().map(|&x| round(x, 3)).collect(),
    };
    Ok((stats, calls))
}

/// USD for `seconds` of `cores` cores at `price` per core-hour.
fn cost(seconds: f64, cores: usize, price: f64) -> f64 {
    seconds / 3600.0 * cores as f64 * price
}

/// Interpreters to try for the baseline: the one given, else the project's virtualenv, then
/// `python3`.
fn python_candidates(args: &BenchArgs) -> Vec<PathBuf> {
    if let Some(p) = &args.python {
        return vec![p.clone()];
    }
    let venv = Path::new(".venv/bin/python");
    let mut out = Vec::new();
    if venv.is_file() {
        out.push(venv.to_path_buf());
    }
    out.push(PathBuf::from("python3"));
    out
}

/// The first candidate that can import onnxruntime and numpy, or why none can.
fn find_python(args: &BenchArgs) -> Result<PathBuf, String> {
    let mut why = Vec::new();
    for python in python_candidates(args) {
        match std::process::Command::new(&python)
            .args(["-c", "import onnxruntime, numpy"])
            .output()
        {
            Ok(o) if o.status.success() => return Ok(python),
            Ok(o) => why.push(format!(
                "{} cannot import onnxruntime and numpy ({})",
                python.display(),
                String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
            Err(e) => why.push(format!("cannot run {}: {e}", python.display())),
        }
    }
    Err(format!(
        "{}; install them with `python3 -m pip install onnxruntime==1.32.0 numpy` or pass --python",
        why.join("; ")
    ))
}

/// Runs bench/baseline_ort.py on the same prompts; a JSON object with `status`.
fn run_baseline(
    args: &BenchArgs,
    model_dir: &Path,
    ttft: &[Ttft],
    repeats: usize,
    decode: (usize, usize),
    calls: &[Call],
    backend: &OnnxBackend,
) -> Value {
    let (tokenizer, threads) = (backend.tokenizer(), backend.threads());
    let skipped = |why: String| {
        eprintln!("moat bench: baseline skipped: {why}");
        json!({"status": "skipped", "note": why})
    };
    let python = match find_python(args) {
        Ok(p) => p,
        Err(why) => return skipped(why),
    };
    let dir = std::env::temp_dir().join(format!("moat-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return skipped(format!("cannot create {}: {e}", dir.display()));
    }
    let script = dir.join("baseline_ort.py");
    let input = dir.join("input.json");
    let spec = json!({
        "model_dir": model_dir,
        "threads": threads,
        "repeats": repeats,
        "ttft": ttft.iter().map(|t| json!({
            "prompt_tokens": t.prompt_tokens,
            "prompt": fixture_tokens(tokenizer, t.prompt_tokens),
        })).collect::<Vec<_>>(),
        "decode": {"prompt": fixture_tokens(tokenizer, decode.0), "steps": decode.1},
        "keystrokes": calls.iter().map(|c| json!({
            "prompt": c.prompt,
            "new_tokens": c.generated.max(1),
        })).collect::<Vec<_>>(),
    });
    let written = std::fs::write(&script, BASELINE_PY)
        .and_then(|()| std::fs::write(&input, spec.to_string()));
    if let Err(e) = written {
        return skipped(format!("cannot write to {}: {e}", dir.display()));
    }
    eprintln!(
        "moat bench: running the Python onnxruntime baseline ({})",
        python.display()
    );
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(&input)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    match output {
        Ok(o) if o.status.success() => match serde_json::from_slice::<Value>(&o.stdout) {
            Ok(mut v) => {
                v["status"] = json!("ok");
                v["python"] = json!(python.display().to_string());
                v
            }
            Err(e) => skipped(format!("the baseline printed no JSON: {e}")),
        },
        Ok(o) => skipped(format!(
            "the baseline failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => skipped(format!("cannot run {}: {e}", python.display())),
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let model_dir = model_path(&args.model.model)?;
    let manifest_dir = if model_dir.is_dir() {
        model_dir.clone()
    } else {
        model_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let load_before = load_average();
    let load_start = Instant::now();
    let backend = load_backend(&args.model)?;
    let load_ms = ms(load_start.elapsed());
    let rss_after_load = proc_status_mib("VmRSS:");
    let name = backend.manifest().model.name.clone();
    eprintln!(
        "moat bench: {} loaded in {load_ms:.0} ms",
        backend.describe()
    );

    let (mut lengths, repeats, steps, chars): (&[usize], usize, usize, usize) = if args.quick {
        (&QUICK_LENGTHS, 2, 16, 8)
    } else {
        (&PROMPT_LENGTHS, 5, 64, usize::MAX)
    };
    if !args.lengths.is_empty() {
        lengths = &args.lengths;
    }
    // Warm-up: the first run allocates ONNX Runtime's buffers.
    measure_ttft(&backend, &[128], 1)?;

    let ttft = measure_ttft(&backend, lengths, repeats)?;
    for t in &ttft {
        eprintln!(
            "moat bench: TTFT {:>5} tokens: {:.2} ms",
            t.prompt_tokens, t.ms_median
        );
    }
    let (decode_prompt, decode_steps, ms_per_token) = measure_decode(&backend, steps)?;
    eprintln!(
        "moat bench: decode {:.2} ms/token ({:.0} tokens/s)",
        ms_per_token,
        1000.0 / ms_per_token
    );

    let (step_depth, step_ms, step_min_ms) = measure_step(&backend, repeats.max(2) * 2)?;
    eprintln!(
        "moat bench: keystroke step ({step_depth} cached + 1 new token, {STEP_GENERATED} generated): {step_ms:.2} ms (min {step_min_ms:.2})"
    );

    let llama_cpp = match &args.llama_bench {
        Some(bin) => compare_llama(bin, args, &backend, step_ms, lengths, repeats)
            .unwrap_or_else(|e| json!({"status": format!("failed: {e:#}")})),
        None => json!({"status": "not run (pass --llama-bench PATH)"}),
    };

    let (doc, cursor, line) = typing_setup(backend.tokenizer(), KEYSTROKE_CONTEXT);
    let typed: String = line.chars().take(chars).collect();
    let debounce = args.debounce_ms as f64;
    let (reuse_on, calls_on) = type_line(&backend, &doc, cursor, &typed, true, debounce)?;
    // Speculative decoding (prompt lookup) off and on, interleaved, in three languages.
    let speculation = speculation::measure(
        &backend,
        args.rounds.unwrap_or(if args.quick { 1 } else { 3 }),
        debounce,
    )?;
    let (reuse_off, _) = type_line(&backend, &doc, cursor, &typed, false, debounce)?;
    eprintln!(
        "moat bench: keystroke p50/p95 {:.2}/{:.2} ms with KV reuse, {:.2}/{:.2} ms without",
        reuse_on.p50_ms, reuse_on.p95_ms, reuse_off.p50_ms, reuse_off.p95_ms
    );
    let line_no = FIXTURE[..cursor].matches('\n').count() + 1;

    let cores = backend.threads();
    let price = args.price_per_core_hour;
    let prefill = ttft
        .iter()
        .min_by_key(|t| t.prompt_tokens.abs_diff(KEYSTROKE_CONTEXT))
        .map(|t| t.ms_median / t.prompt_tokens.max(1) as f64)
        .unwrap_or(0.0);
    let costs = json!({
        "price_per_core_hour_usd": price,
        "cores": cores,
        "per_million_generated_tokens_usd": round(cost(ms_per_token / 1000.0 * 1e6, cores, price), 4),
        "per_million_prompt_tokens_usd": round(cost(prefill / 1000.0 * 1e6, cores, price), 4),
        "per_1000_suggestions_usd": round(cost(reuse_on.mean_ms / 1000.0 * 1000.0, cores, price), 6),
        "per_1000_suggestions_no_reuse_usd": round(cost(reuse_off.mean_ms / 1000.0 * 1000.0, cores, price), 6),
        "note": "compute only: cores x busy seconds x price; a suggestion = one keystroke's pipeline call (mean, KV reuse on)",
    });

    let baseline = if args.baseline {
        let mut b = run_baseline(
            args,
            &manifest_dir,
            &ttft,
            repeats,
            (decode_prompt, decode_steps),
            &calls_on,
            &backend,
        );
        if b["status"] == "ok" {
            let base_p50 = b["keystroke"]["p50_ms"].as_f64().unwrap_or(0.0);
            let base_mean = b["keystroke"]["mean_ms"].as_f64().unwrap_or(0.0);
            let base_decode = b["decode"]["ms_per_token"].as_f64().unwrap_or(0.0);
            b["ratio"] = json!({
                "keystroke_p50": round(base_p50 / reuse_on.p50_ms.max(1e-9), 2),
                "keystroke_mean": round(base_mean / reuse_on.mean_ms.max(1e-9), 2),
                "decode_per_token": round(base_decode / ms_per_token.max(1e-9), 2),
                "note": "baseline time / moat time (higher = moat faster); moat with KV reuse",
            });
            eprintln!(
                "moat bench: Python baseline keystroke p50 {base_p50:.2} ms: moat is {:.1}x faster",
                base_p50 / reuse_on.p50_ms.max(1e-9)
            );
        }
        Some(b)
    } else {
        None
    };

    let report = json!({
        "tool": "moat bench",
        "moat_version": env!("CARGO_PKG_VERSION"),
        "date": today(),
        "quick": args.quick,
        "model": name,
        "model_path": model_dir.display().to_string(),
        "backend": backend.describe(),
        "threads": backend.threads(),
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu_model": cpu_model(),
            "os": std::env::consts::OS,
            "load_average_1m_before": load_before,
            "load_average_1m_after": load_average(),
        },
        "load_ms": round(load_ms, 1),
        "memory": {
            "rss_after_load_mib": rss_after_load,
            "peak_rss_mib": proc_status_mib("VmHWM:"),
        },
        "ttft": ttft,
        "decode": {
            "prompt_tokens": decode_prompt,
            "steps": decode_steps,
            "ms_per_token": round(ms_per_token, 4),
            "tokens_per_s": round(1000.0 / ms_per_token.max(1e-9), 1),
        },
        "keystroke_step": {
            "protocol": "depth tokens cached, 1 new token, then 8 generated (llama-bench -p 1 -n 8 -d DEPTH)",
            "depth": step_depth,
            "generated": STEP_GENERATED,
            "ms_median": round(step_ms, 3),
            "ms_min": round(step_min_ms, 3),
        },
        "keystroke": {
            "file": FIXTURE_NAME,
            "line": line_no,
            "typed": typed,
            "keystrokes": reuse_on.latencies_ms.len(),
            "debounce_ms": args.debounce_ms,
            "reuse_on": reuse_on,
            "reuse_off": reuse_off,
            "speedup_p50": round(reuse_off.p50_ms / reuse_on.p50_ms.max(1e-9), 2),
        },
        "speculation": speculation,
        "llama_cpp": llama_cpp,
        "cost": costs,
        "baseline": baseline.unwrap_or(json!({"status": "not run (pass --baseline)"})),
        "notes": [
            "keystroke = incremental tree-sitter reparse + moat_complete::complete, server default settings; the LSP scheduler's debounce is not slept but added in end_to_end_p50_ms",
            "the Python baseline times only its model runs (no tokenization, parsing or post-processing), moat's keystroke time includes all of them",
            "llama.cpp comparison: with --llama-bench (same GGUF weights, same threads, interleaved rounds; see bench/README.md)",
        ],
    });

    let out = match &args.json {
        Some(p) => Some(p.clone()),
        None if !args.quick && Path::new("bench/results").is_dir() => {
            Some(PathBuf::from("bench/results").join(format!("{}-{}.json", today(), slug(&name))))
        }
        None => None,
    };
    let text = serde_json::to_string_pretty(&report)?;
    match &out {
        Some(p) if p == Path::new("-") => crate::print_out(&text),
        Some(p) => {
            write_file(p, &text)?;
            eprintln!("moat bench: results written to {}", p.display());
        }
        None => {}
    }
    if let Some(plot) = &args.plot {
        write_file(plot, &svg::report_plot(&report))?;
        eprintln!("moat bench: plot written to {}", plot.display());
    }
    if out.as_deref() != Some(Path::new("-")) {
        print!("{}", table(&report));
    }
    std::io::stdout().flush()?;
    if report["keystroke"]["keystrokes"].as_u64() == Some(0) {
        bail!("the keystroke simulation typed nothing");
    }
    Ok(())
}

/// llama-bench beside moat: `args.rounds` interleaved rounds of the keystroke step (moat's
/// first round is `first_moat_ms`, already measured), then its TTFT at moat's prompt lengths.
fn compare_llama(
    bin: &Path,
    args: &BenchArgs,
    backend: &OnnxBackend,
    first_moat_ms: f64,
    lengths: &[usize],
    repeats: usize,
) -> Result<Value> {
    let gguf = llama::find_gguf(args.gguf.as_deref())?;
    let threads = backend.threads();
    let depth = STEP_DEPTH.min(backend.context_length().saturating_sub(STEP_GENERATED + 2));
    let (mut moat_ms, mut llama_ms) = (vec![first_moat_ms], Vec::new());
    let (mut tokens_per_s, mut peak) = (Vec::new(), 0.0f64);
    for round in 0..args.rounds.unwrap_or(3).max(1) {
        if round > 0 {
            moat_ms.push(measure_step(backend, repeats.max(2) * 2)?.1);
        }
        let step = llama::keystroke_step(
            bin,
            &gguf,
            threads,
            args.llama_poll,
            depth,
            STEP_GENERATED,
            5,
        )?;
        eprintln!(
            "moat bench: round {}: keystroke step moat {:.1} ms, llama.cpp {:.1} ms",
            round + 1,
            moat_ms[round],
            step.ms
        );
        llama_ms.push(step.ms);
        tokens_per_s.push(step.tokens_per_s);
        peak = peak.max(step.peak_rss_mib.unwrap_or(0.0));
    }
    let (ttft, ttft_peak) = llama::ttft(bin, &gguf, threads, args.llama_poll, lengths, 2)?;
    peak = peak.max(ttft_peak.unwrap_or(0.0));
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(json!({
        "status": "ok",
        "binary": bin.display().to_string(),
        "gguf": gguf.display().to_string(),
        "gguf_name": gguf.file_name().map(|n| n.to_string_lossy().into_owned()),
        "threads": threads,
        "poll": args.llama_poll,
        "keystroke_step": {
            "protocol": format!("llama-bench -p 1 -n {STEP_GENERATED} -d {depth} -r 5 --poll {}: mean pp1 + mean tg{STEP_GENERATED}", args.llama_poll),
            "depth": depth,
            "rounds": llama_ms.len(),
            "moat_ms": moat_ms.iter().map(|&x| round(x, 2)).collect::<Vec<_>>(),
            "llama_ms": llama_ms.iter().map(|&x| round(x, 2)).collect::<Vec<_>>(),
            "ratio": round(median(&moat_ms) / median(&llama_ms).max(1e-9), 3),
        },
        "ttft": ttft.iter().map(|(n, ms)| json!({"prompt_tokens": n, "ms": round(*ms, 1)})).collect::<Vec<_>>(),
        "decode_tokens_per_s": round(median(&tokens_per_s), 1),
        "peak_rss_mib": round(peak, 1),
    }))
}

/// The human-readable summary of a report.
fn table(r: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut out = format!(
        "moat bench: {} — {} threads, {} ({} CPUs)\n",
        r["backend"].as_str().unwrap_or(""),
        r["threads"].as_u64().unwrap_or(0),
        r["machine"]["cpu_model"].as_str().unwrap_or(""),
        r["machine"]["cpus"].as_u64().unwrap_or(0)
    );
    out.push_str(&format!(
        "load {:.0} ms; peak RSS {:.1} MiB\n",
        f(&r["load_ms"]),
        f(&r["memory"]["peak_rss_mib"])
    ));
    let base = &r["baseline"];
    let base_ok = base["status"] == "ok";
    out.push_str("prompt tokens   TTFT ms");
    out.push_str(if base_ok { "   baseline ms\n" } else { "\n" });
    if let Some(list) = r["ttft"].as_array() {
        for (i, t) in list.iter().enumerate() {
            out.push_str(&format!(
                "{:>13} {:>9.2}",
                t["prompt_tokens"].as_u64().unwrap_or(0),
                f(&t["ms_median"])
            ));
            if base_ok {
                out.push_str(&format!("{:>14.2}", f(&base["ttft"][i]["ms_median"])));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "decode: {:.2} ms/token, {:.0} tokens/s\n",
        f(&r["decode"]["ms_per_token"]),
        f(&r["decode"]["tokens_per_s"])
    ));
    let k = &r["keystroke"];
    out.push_str(&format!(
        "keystroke ({} keystrokes, ~{:.0}-token prompts):\n",
        k["keystrokes"].as_u64().unwrap_or(0),
        f(&k["reuse_on"]["prompt_tokens_mean"])
    ));
    for (label, v) in [
        ("KV reuse on ", &k["reuse_on"]),
        ("KV reuse off", &k["reuse_off"]),
    ] {
        out.push_str(&format!(
            "  {label}  p50 {:>8.2} ms  p95 {:>8.2} ms  (computed {:.0} tokens/keystroke; p50 parse {:.2} + model {:.2} + rest of pipeline {:.2} ms)\n",
            f(&v["p50_ms"]),
            f(&v["p95_ms"]),
            f(&v["computed_tokens_mean"]),
            f(&v["parse_p50_ms"]),
            f(&v["model_p50_ms"]),
            f(&v["pipeline_p50_ms"])
        ));
    }
    if base_ok {
        out.push_str(&format!(
            "  Python ORT    p50 {:>8.2} ms  p95 {:>8.2} ms  → moat is {:.1}x faster (p50)\n",
            f(&base["keystroke"]["p50_ms"]),
            f(&base["keystroke"]["p95_ms"]),
            f(&base["ratio"]["keystroke_p50"])
        ));
    } else if let Some(s) = base["note"].as_str() {
        out.push_str(&format!("  baseline skipped: {s}\n"));
    }
    out.push_str(&format!(
        "  end to end (p50 + {} ms debounce): {:.1} ms\n",
        k["debounce_ms"].as_u64().unwrap_or(0),
        f(&k["reuse_on"]["end_to_end_p50_ms"])
    ));
    let s = &r["keystroke_step"];
    out.push_str(&format!(
        "keystroke step ({} cached + 1 new, {} generated): {:.1} ms median\n",
        s["depth"].as_u64().unwrap_or(0),
        s["generated"].as_u64().unwrap_or(0),
        f(&s["ms_median"])
    ));
    let l = &r["llama_cpp"];
    if l["status"] == "ok" {
        let range = |v: &Value| {
            let xs: Vec<f64> = v
                .as_array()
                .map_or(Vec::new(), |a| a.iter().map(f).collect());
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(0.0, f64::max);
            format!("{lo:.1}–{hi:.1}")
        };
        out.push_str(&format!(
            "llama.cpp ({}, --poll {}): keystroke step {} ms vs moat {} ms over {} interleaved rounds: moat/llama.cpp = {:.2} (medians)\n",
            l["gguf_name"].as_str().unwrap_or(""),
            l["poll"].as_u64().unwrap_or(0),
            range(&l["keystroke_step"]["llama_ms"]),
            range(&l["keystroke_step"]["moat_ms"]),
            l["keystroke_step"]["rounds"].as_u64().unwrap_or(0),
            f(&l["keystroke_step"]["ratio"])
        ));
        let ttft: Vec<String> = l["ttft"].as_array().map_or(Vec::new(), |a| {
            a.iter()
                .map(|t| format!("{} {:.0}", t["prompt_tokens"], f(&t["ms"])))
                .collect()
        });
        out.push_str(&format!(
            "llama.cpp TTFT ms: {}; decode {:.0} tokens/s at depth {}; peak RSS {:.0} MiB\n",
            ttft.join(", "),
            f(&l["decode_tokens_per_s"]),
            l["keystroke_step"]["depth"].as_u64().unwrap_or(0),
            f(&l["peak_rss_mib"])
        ));
    } else if let Some(status) = l["status"].as_str() {
        out.push_str(&format!("llama.cpp: {status}\n"));
    }
    out.push_str(&speculation::table(&r["speculation"]));
    let c = &r["cost"];
    out.push_str(&format!(
        "cost at ${}/core-hour × {} cores: ${:.4} per 1M generated tokens, ${:.4} per 1M prompt tokens, ${:.6} per 1,000 suggestions\n",
        f(&c["price_per_core_hour_usd"]),
        c["cores"].as_u64().unwrap_or(0),
        f(&c["per_million_generated_tokens_usd"]),
        f(&c["per_million_prompt_tokens_usd"]),
        f(&c["per_1000_suggestions_usd"])
    ));
    out
}

/// Hand-written SVG (two line charts, log axes): enough for a report, no plotting dependency.
mod svg {
    use serde_json::Value;

    pub struct Series {
        pub name: String,
        pub color: &'static str,
        pub points: Vec<(f64, f64)>,
    }

    pub struct Chart<'a> {
        pub title: &'a str,
        pub x_label: &'a str,
        pub y_label: &'a str,
        pub x_log: bool,
        pub y_log: bool,
        /// Put the legend in the lower right corner (else upper left).
        pub legend_low: bool,
        pub series: Vec<Series>,
    }

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    fn fmt_tick(v: f64) -> String {
        if v >= 100.0 || v == v.round() {
            format!("{v:.0}")
        } else if v >= 1.0 {
            format!("{v:.1}")
        } else {
            format!("{v}")
        }
    }

    /// Tick values for [lo, hi]: decades with 2 and 5 in between on log axes, ~5 steps else.
    fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
        let mut out = Vec::new();
        if log {
            let mut d = 10f64.powf(lo.log10().floor());
            while d <= hi * 1.0001 {
                for m in [1.0, 2.0, 5.0] {
                    let v = d * m;
                    if v >= lo * 0.9999 && v <= hi * 1.0001 {
                        out.push(v);
                    }
                }
                d *= 10.0;
            }
        } else {
            let raw = (hi - lo) / 5.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap_or(raw);
            let mut v = (lo / step).ceil() * step;
            while v <= hi + step * 1e-6 {
                out.push(v);
                v += step;
            }
        }
        out
    }

    /// One chart in the box (x, y, w, h) of the drawing.
    pub fn chart(c: &Chart<'_>, x0: f64, y0: f64, w: f64, h: f64) -> String {
        let (ml, mr, mt, mb) = (60.0, 10.0, 30.0, 45.0);
        let (pw, ph) = (w - ml - mr, h - mt - mb);
        let pts: Vec<(f64, f64)> = c
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| {
                x.is_finite() && y.is_finite() && (!c.x_log || *x > 0.0) && (!c.y_log || *y > 0.0)
            })
            .collect();
        let mut out = format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n",
            x0 + ml + pw / 2.0,
            y0 + 18.0,
            esc(c.title)
        );
        if pts.is_empty() {
            return out;
        }
        let range = |vals: Vec<f64>, log: bool| {
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if log {
                // The nearest 1-2-5 steps around the data.
                let steps = |v: f64| {
                    let d = 10f64.powf(v.log10().floor());
                    [d, 2.0 * d, 5.0 * d, 10.0 * d]
                };
                let lo = steps(lo)
                    .into_iter()
                    .rev()
                    .find(|s| *s <= lo * 1.0001)
                    .unwrap_or(lo);
                let hi = steps(hi)
                    .into_iter()
                    .find(|s| *s >= hi * 0.9999)
                    .unwrap_or(hi)
                    .max(lo * 2.0);
                (lo, hi)
            } else {
                let lo = if lo >= 0.0 { 0.0 } else { lo };
                (lo, if hi > lo { hi * 1.05 } else { lo + 1.0 })
            }
        };
        let (xlo, xhi) = range(pts.iter().map(|p| p.0).collect(), c.x_log);
        let (ylo, yhi) = range(pts.iter().map(|p| p.1).collect(), c.y_log);
        let t = |v: f64, lo: f64, hi: f64, log: bool| {
            if log {
                (v.log10() - lo.log10()) / (hi.log10() - lo.log10())
            } else {
                (v - lo) / (hi - lo)
            }
        };
        let px = |x: f64| x0 + ml + pw * t(x, xlo, xhi, c.x_log);
        let py = |y: f64| y0 + mt + ph * (1.0 - t(y, ylo, yhi, c.y_log));
        out.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{pw:.1}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#333\"/>\n",
            x0 + ml,
            y0 + mt
        ));
        for v in ticks(xlo, xhi, c.x_log) {
            let x = px(v);
            out.push_str(&format!(
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n",
                y0 + mt,
                y0 + mt + ph,
                y0 + mt + ph + 14.0,
                fmt_tick(v)
            ));
        }
        for v in ticks(ylo, yhi, c.y_log) {
            let y = py(v);
            out.push_str(&format!(
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>\n",
                x0 + ml,
                x0 + ml + pw,
                x0 + ml - 4.0,
                y + 3.0,
                fmt_tick(v)
            ));
        }
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 {:.1} {:.1})\">{}</text>\n",
            x0 + ml + pw / 2.0,
            y0 + h - 8.0,
            esc(c.x_label),
            x0 + 14.0,
            y0 + mt + ph / 2.0,
            x0 + 14.0,
            y0 + mt + ph / 2.0,
            esc(c.y_label)
        ));
        let mut legend = String::new();
        for (i, s) in c.series.iter().enumerate() {
            let path: Vec<String> = s
                .points
                .iter()
                .filter(|(x, y)| (!c.x_log || *x > 0.0) && (!c.y_log || *y > 0.0))
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            if path.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                s.color,
                path.join(" ")
            ));
            for &(x, y) in &s.points {
                if (!c.x_log || x > 0.0) && (!c.y_log || y > 0.0) {
                    out.push_str(&format!(
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>",
                        px(x),
                        py(y),
                        s.color
                    ));
                }
            }
            out.push('\n');
            let (lx, ly) = if c.legend_low {
                let rows = c.series.len() as f64;
                (
                    x0 + ml + pw - 230.0,
                    y0 + mt + ph - 8.0 - 14.0 * (rows - 1.0 - i as f64),
                )
            } else {
                (x0 + ml + 8.0, y0 + mt + 14.0 + 14.0 * i as f64)
            };
            legend.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"225\" height=\"14\" fill=\"white\" fill-opacity=\"0.85\"/>",
                lx - 2.0,
                ly - 11.0
            ));
            legend.push_str(&format!(
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>\n",
                lx,
                ly - 3.0,
                lx + 18.0,
                ly - 3.0,
                s.color,
                lx + 22.0,
                ly,
                esc(&s.name)
            ));
        }
        // Legends last, over every curve.
        out.push_str(&legend);
        out
    }

    /// Empirical CDF: (latency, fraction of keystrokes at or below it).
    fn cdf(values: &[f64]) -> Vec<(f64, f64)> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        v.iter()
            .enumerate()
            .map(|(i, &x)| (x, (i + 1) as f64 / n))
            .collect()
    }

    fn num(v: &Value) -> f64 {
        v.as_f64().unwrap_or(f64::NAN)
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    }

    /// The bench report's plot: TTFT vs prompt length and the keystroke latency CDF.
    pub fn report_plot(r: &Value) -> String {
        let series_of = |list: &Value| -> Vec<(f64, f64)> {
            list.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| {
                            Some((t["prompt_tokens"].as_f64()?, t["ms_median"].as_f64()?))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let base_ok = r["baseline"]["status"] == "ok";
        let mut ttft = vec![Series {
            name: "moat (ort, Rust)".into(),
            color: "#1f77b4",
            points: series_of(&r["ttft"]),
        }];
        let k = &r["keystroke"];
        let mut keys = vec![
            Series {
                name: format!(
                    "moat, KV reuse on (p50 {:.1} ms)",
                    num(&k["reuse_on"]["p50_ms"])
                ),
                color: "#1f77b4",
                points: cdf(&floats(&k["reuse_on"]["latencies_ms"])),
            },
            Series {
                name: format!(
                    "moat, KV reuse off (p50 {:.1} ms)",
                    num(&k["reuse_off"]["p50_ms"])
                ),
                color: "#ff7f0e",
                points: cdf(&floats(&k["reuse_off"]["latencies_ms"])),
            },
        ];
        if base_ok {
            ttft.push(Series {
                name: "Python onnxruntime, naive".into(),
                color: "#d62728",
                points: series_of(&r["baseline"]["ttft"]),
            });
            keys.push(Series {
                name: format!(
                    "Python onnxruntime, naive (p50 {:.1} ms)",
                    num(&r["baseline"]["keystroke"]["p50_ms"])
                ),
                color: "#d62728",
                points: cdf(&floats(&r["baseline"]["keystroke"]["latencies_ms"])),
            });
        }
        let title = format!(
            "{} — {} threads — {}",
            r["model"].as_str().unwrap_or(""),
            r["threads"].as_u64().unwrap_or(0),
            r["date"].as_str().unwrap_or("")
        );
        let mut out = String::from(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"400\" font-family=\"sans-serif\">\n\
             <rect width=\"960\" height=\"400\" fill=\"white\"/>\n",
        );
        out.push_str(&format!(
            "<text x=\"480\" y=\"16\" font-size=\"12\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
            esc(&title)
        ));
        out.push_str(&chart(
            &Chart {
                title: "Time to first token vs prompt length",
                x_label: "prompt tokens",
                y_label: "ms (log)",
                x_log: true,
                y_log: true,
                legend_low: false,
                series: ttft,
            },
            0.0,
            20.0,
            480.0,
            380.0,
        ));
        out.push_str(&chart(
            &Chart {
                title: "Per-keystroke latency while typing (CDF)",
                x_label: "ms per keystroke (log)",
                y_label: "fraction of keystrokes",
                x_log: true,
                y_log: false,
                legend_low: true,
                series: keys,
            },
            480.0,
            20.0,
            480.0,
            380.0,
        ));
        out.push_str("</svg>\n");
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ticks_cover_the_range() {
            assert_eq!(
                ticks(1.0, 100.0, true),
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
            );
            assert_eq!(
                ticks(0.0, 1.0, false),
                vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
            );
        }

        #[test]
        fn plot_is_well_formed_svg() {
            let r = serde_json::json!({
                "model": "m", "threads": 2, "date": "2026-01-01",
                "ttft": [{"prompt_tokens": 128, "ms_median": 3.0}, {"prompt_tokens": 512, "ms_median": 9.0}],
                "keystroke": {"reuse_on": {"p50_ms": 1.0, "latencies_ms": [1.0, 2.0]},
                              "reuse_off": {"p50_ms": 5.0, "latencies_ms": [5.0, 6.0]}},
                "baseline": {"status": "skipped"}
            });
            let svg = report_plot(&r);
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
            assert_eq!(svg.matches("<polyline").count(), 3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_arithmetic() {
        // 1 ms per token on 2 cores at $0.05/core-hour: 1e6 tokens = 1000 s = 2000 core-s.
        let c = cost(1e-3 * 1e6, 2, 0.05);
        assert!((c - 2000.0 / 3600.0 * 0.05).abs() < 1e-12);
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("tiny-llama-test"), "tiny-llama-test");
        assert_eq!(slug("a b/c"), "a-b-c");
    }
}
