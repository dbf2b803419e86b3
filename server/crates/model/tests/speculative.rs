//! Speculative decoding by prompt lookup gives exactly the tokens of plain greedy decoding: on FIM
//! prompts in several languages (prefixes and suffixes from `tests/eval/corpus-heldout.jsonl`),
//! with and without token healing and a stop check, generation with speculation on and off is
//! compared token for token. On the tiny `gqa-shared` test model always (logits for every
//! position); on the installed default model when it is there (skipped with a message unless
//! `MOAT_REQUIRE_DEFAULT_MODEL=1`), whose LM head computes the last `logits_to_keep` rows.
//!
//! `speculation_speed` (ignored; run it in release with `--ignored --nocapture`) types lines of
//! those files one character at a time, a request per keystroke, and prints the time per
//! suggestion and the accepted draft tokens per verification step with speculation on and off.

use std::path::{Path, PathBuf};
use std::time::Instant;

use moat_model::{
    Backend, CancelToken, GenerateRequest, Generation, Healing, OnnxBackend, OnnxOptions,
    SpeculationStats,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn load(dir: &Path) -> OnnxBackend {
    OnnxBackend::load(
        dir,
        &OnnxOptions {
            threads: 0,
            ort_library: None,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The default model's folder, or `None` when the test skips (`default_model_for_tests`).
fn default_model(test: &str) -> Option<PathBuf> {
    moat_model::default_model_for_tests(test)
}

struct Task {
    language: String,
    prefix: String,
    suffix: String,
    expected: String,
}

/// The first `per_language` tasks of each language in `languages`.
fn tasks(languages: &[&str], per_language: usize) -> Vec<Task> {
    let path = root().join("tests/eval/corpus-heldout.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out: Vec<Task> = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let get = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let language = get("language");
        if languages.contains(&language.as_str())
            && out.iter().filter(|t| t.language == language).count() < per_language
        {
            out.push(Task {
                language,
                prefix: get("prefix"),
                suffix: get("suffix"),
                expected: get("expected"),
            });
        }
    }
    assert_eq!(out.len(), languages.len() * per_language);
    out
}

/// A FIM prompt for `prefix`/`suffix` (the prefix's last ~`budget` tokens, the suffix's first
/// quarter of that), backed up over the prefix's last token when `heal` (its bytes are returned).
fn fim(
    backend: &OnnxBackend,
    prefix: &str,
    suffix: &str,
    budget: usize,
    heal: bool,
) -> (Vec<u32>, Vec<u8>) {
    let tok = backend.tokenizer();
    let mut p = tok.encode(prefix);
    let healed = if heal && p.len() > 1 {
        let last = p.pop().unwrap();
        tok.token_bytes(last).to_vec()
    } else {
        Vec::new()
    };
    let p = p[p.len().saturating_sub(budget)..].to_vec();
    let mut s = tok.encode(suffix);
    s.truncate((budget / 4).min(250));
    (tok.fim_prompt(&[], &p, &s), healed)
}

fn line_end(bytes: &[u8], healed: usize) -> Option<usize> {
    bytes
        .iter()
        .skip(healed)
        .position(|&b| b == b'\n')
        .map(|i| healed + i)
}

fn run(
    backend: &OnnxBackend,
    prompt: &[u32],
    healed: &[u8],
    max: usize,
    stop_at_line: bool,
    spec: bool,
) -> Generation {
    backend.set_speculation(spec);
    let n = healed.len();
    let stop = move |b: &[u8]| line_end(b, n);
    let req = GenerateRequest::new(
        prompt.to_vec(),
        max,
        Healing::new(healed.to_vec()),
        if stop_at_line { Some(&stop) } else { None },
    );
    backend.generate(&req, &CancelToken::new()).unwrap()
}

/// Generates on every task in three settings (free, healed, healed and single-line) with
/// speculation off and on, and asserts the same tokens, bytes and finish. Returns the
/// speculation counters of the runs with speculation on.
fn check_equivalence(
    backend: &OnnxBackend,
    tasks: &[Task],
    budget: usize,
    max: usize,
) -> SpeculationStats {
    let mut on = SpeculationStats::default();
    for (i, task) in tasks.iter().enumerate() {
        for (heal, line) in [(false, false), (true, false), (true, true)] {
            let (prompt, healed) = fim(backend, &task.prefix, &task.suffix, budget, heal);
            // Cold cache for one, warm for the other: reuse must not change the result either.
            backend.reset_cache();
            let plain = run(backend, &prompt, &healed, max, line, false);
            let before = backend.speculation_stats();
            let fast = run(backend, &prompt, &healed, max, line, true);
            let d = backend.speculation_stats().since(&before);
            on = on + d;
            assert_eq!(
                plain.tokens,
                fast.tokens,
                "task {i} ({}), heal {heal}, single-line {line}: plain {:?} vs speculative {:?}",
                task.language,
                String::from_utf8_lossy(&plain.bytes),
                String::from_utf8_lossy(&fast.bytes)
            );
            assert_eq!(plain.bytes, fast.bytes);
            assert_eq!(plain.finish, fast.finish);
        }
    }
    on
}

const LANGUAGES: [&str; 4] = ["python", "rust", "typescript", "go"];

#[test]
fn tiny_llama_speculation_is_greedy_decoding() {
    let backend = load(&root().join("model-assets/tiny-llama"));
    assert!(
        backend.can_speculate(),
        "tiny-llama returns logits for every position"
    );
    // A float model: batched and one-token passes agree to rounding, every verified row is
    // trusted (the drafts' acceptance path).
    backend.set_verify_margin(0.0);
    let stats = check_equivalence(&backend, &tasks(&LANGUAGES, 4), 600, 32);
    eprintln!(
        "tiny-llama, margin 0: {stats:?}, {:.2} accepted per verification",
        stats.accepted_per_verify()
    );
    // The test is not vacuous: drafts were verified, some accepted, some rejected.
    assert!(stats.verify_steps > 0 && stats.accepted > 0, "{stats:?}");
    assert!(stats.accepted < stats.drafted, "{stats:?}");
    assert_eq!(stats.recomputed, 0);
    // The default margin: the tiny model's logits are flat, near ties are everywhere and most
    // verified rows are recomputed (the recomputation path).
    backend.set_verify_margin(moat_model::VERIFY_MARGIN);
    let stats = check_equivalence(&backend, &tasks(&LANGUAGES, 2), 600, 32);
    eprintln!("tiny-llama, default margin: {stats:?}");
    assert!(stats.recomputed > 0, "{stats:?}");
}

#[test]
fn speculation_can_be_turned_off_and_concat_models_do_not_speculate() {
    let gpt2 = load(&root().join("model-assets/tiny-gpt2"));
    assert!(
        !gpt2.can_speculate(),
        "concat layout: rewinding copies the cache"
    );
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("model-assets/tiny-llama");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let manifest = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[runtime]\nspeculative = false\n"),
    )
    .unwrap();
    let off = load(dir.path());
    assert!(off.can_speculate() && !off.speculating());
    let task = &tasks(&["python"], 1)[0];
    let (prompt, _) = fim(&off, &task.prefix, &task.suffix, 600, false);
    let req = GenerateRequest::new(prompt, 16, Healing::none(), None);
    off.generate(&req, &CancelToken::new()).unwrap();
    let stats = off.speculation_stats();
    assert_eq!((stats.verify_steps, stats.drafted), (0, 0), "{stats:?}");
    assert!(stats.model_steps > 0);
}

#[test]
fn default_model_speculation_is_greedy_decoding() {
    let Some(dir) = default_model("default_model_speculation_is_greedy_decoding") else {
        return;
    };
    let backend = load(&dir);
    if !backend.can_speculate() {
        // An import older than version 2: the builder's pruned LM head (the last position's
        // logits only) without the logits_to_keep input. scripts/setup.sh upgrades it.
        assert!(
            std::env::var("MOAT_REQUIRE_DEFAULT_MODEL").as_deref() != Ok("1"),
            "the default model at {} cannot verify drafts (no logits_to_keep input): run \
             scripts/setup.sh to upgrade it",
            dir.display()
        );
        eprintln!(
            "default model at {}: logits for the last position only (an import older than \
             version 2): speculation is off; checking that decoding is unchanged",
            dir.display()
        );
    }
    // MOAT_SPEC_EQUIV_TASKS: tasks per language (2).
    let per = std::env::var("MOAT_SPEC_EQUIV_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let stats = check_equivalence(
        &backend,
        &tasks(&["python", "rust", "typescript"], per),
        1000,
        24,
    );
    eprintln!(
        "default model: {stats:?}, {:.2} accepted per verification",
        stats.accepted_per_verify()
    );
    if backend.can_speculate() {
        assert!(stats.verify_steps > 0, "{stats:?}");
    } else {
        assert_eq!(stats.verify_steps, 0);
    }
}

/// Types the first `MOAT_SPEC_CHARS` (12) characters of each task's expected line one at a time (a request per
/// keystroke, the KV cache kept), single-line and multi-line, speculation off then on.
#[test]
#[ignore]
fn speculation_speed() {
    let dir = std::env::var_os("MOAT_SPEC_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| default_model("speculation_speed"));
    let Some(dir) = dir else { return };
    let backend = load(&dir);
    println!(
        "{}: can speculate {}",
        backend.describe(),
        backend.can_speculate()
    );
    let chars: usize = std::env::var("MOAT_SPEC_CHARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let per = std::env::var("MOAT_SPEC_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for language in ["python", "rust", "typescript"] {
        let tasks = tasks(&[language], per);
        for (mode, max, line) in [("single-line", 24, true), ("multi-line", 48, false)] {
            let mut times = [Vec::new(), Vec::new()];
            let mut stats = [SpeculationStats::default(); 2];
            let mut generated = [0usize; 2];
            for (t, task) in tasks.iter().enumerate() {
                let typed: String = task
                    .expected
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(chars)
                    .collect();
                // A fixed window: the prefix's last ~1,000 tokens before typing (as the server's
                // quantised windows keep the prompt's start while the user types on a line).
                let tok = backend.tokenizer();
                let ids = tok.encode(&task.prefix);
                let tail: usize = ids[ids.len().saturating_sub(1000)..]
                    .iter()
                    .map(|&i| tok.token_bytes(i).len())
                    .sum();
                let mut cut = task.prefix.len().saturating_sub(tail);
                while !task.prefix.is_char_boundary(cut) {
                    cut += 1;
                }
                let window = &task.prefix[cut..];
                // The file was open a while: its prompt is in the cache (not timed).
                backend.reset_cache();
                let (prompt, healed) = fim(&backend, window, &task.suffix, 4000, true);
                run(&backend, &prompt, &healed, 1, false, false);
                // Off then on, on then off for the next task (the first keystroke of the second
                // pass finds the first pass's last prompt in the cache).
                let order = if t % 2 == 0 {
                    [false, true]
                } else {
                    [true, false]
                };
                for spec in order {
                    let k = usize::from(spec);
                    for n in 1..=typed.chars().count() {
                        let at: String = typed.chars().take(n).collect();
                        let prefix = format!("{window}{at}");
                        let (prompt, healed) = fim(&backend, &prefix, &task.suffix, 4000, true);
                        let before = backend.speculation_stats();
                        let start = Instant::now();
                        let g = run(&backend, &prompt, &healed, max, line, spec);
                        times[k].push(start.elapsed().as_secs_f64() * 1e3);
                        stats[k] = stats[k] + backend.speculation_stats().since(&before);
                        generated[k] += g.tokens.len();
                    }
                }
            }
            let p50 = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (m0, m1) = (mean(&times[0]), mean(&times[1]));
            let (p0, p1) = (p50(&mut times[0]), p50(&mut times[1]));
            println!(
                "{language:10} {mode:11} requests {:3} tokens {:4}/{:4} | off: mean {m0:7.1} ms p50 {p0:7.1} ms, {} steps | on: mean {m1:7.1} ms p50 {p1:7.1} ms, {} steps, {} verifications, {} drafted, {} accepted, {} recomputed ({:.2}/verification, {:.2} tokens/step) | speed-up mean {:.2}x",
                times[0].len(),
                generated[0],
                generated[1],
                stats[0].model_steps,
                stats[1].model_steps,
                stats[1].verify_steps,
                stats[1].drafted,
                stats[1].accepted,
                stats[1].recomputed,
                stats[1].accepted_per_verify(),
                stats[1].tokens_per_step(),
                m0 / m1,
            );
        }
    }
}

/// How far a position's logits computed in a batch of `k` fed tokens are from the same
/// position's logits computed one token at a time (the numerical noise speculation adds).
#[test]
#[ignore]
fn batch_versus_single_logits() {
    let Some(dir) = std::env::var_os("MOAT_SPEC_MODEL_DIR").map(PathBuf::from) else {
        return;
    };
    let backend = load(&dir);
    for task in tasks(&["python", "rust", "typescript"], 2) {
        let (prompt, _) = fim(&backend, &task.prefix, &task.suffix, 1000, false);
        let cont = backend.tokenizer().encode(&task.expected);
        for k in [2usize, 4, 7] {
            let mut full = prompt.clone();
            full.extend_from_slice(&cont[..k.min(cont.len())]);
            backend.reset_cache();
            backend.logits_for(&prompt).unwrap();
            let batch = backend.logits_for(&full).unwrap();
            backend.reset_cache();
            let mut single = backend.logits_for(&prompt).unwrap();
            for n in prompt.len() + 1..=full.len() {
                single = backend.logits_for(&full[..n]).unwrap();
            }
            let diff = batch
                .iter()
                .zip(&single)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let mut sorted = single.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            println!(
                "{} k={k}: max |batch - single| {diff:.4}, top-2 margin {:.4}",
                task.language,
                sorted[0] - sorted[1]
            );
        }
    }
}

/// The cost of a forward pass by how many tokens it feeds (1 = a plain decode step, 1 + k = a
/// verification of k draft tokens) at ~1,000 cached tokens, and the cold prefill of that prompt,
/// on the default model (`MOAT_DEFAULT_MODEL_DIR`) and on `MOAT_SPEC_MODEL_DIR` (an export with
/// logits for every position).
#[test]
#[ignore]
fn verify_cost() {
    let mut dirs = Vec::new();
    if let Some(d) = default_model("verify_cost") {
        dirs.push(d);
    }
    if let Some(d) = std::env::var_os("MOAT_SPEC_MODEL_DIR") {
        dirs.push(PathBuf::from(d));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let task = &tasks(&["python"], 1)[0];
    let backends: Vec<OnnxBackend> = dirs.iter().map(|d| load(d)).collect();
    let (prompt, _) = fim(&backends[0], &task.prefix, &task.suffix, 1000, false);
    let cont = backends[0].tokenizer().encode(&task.expected);
    for round in 0..2 {
        for (dir, backend) in dirs.iter().zip(&backends) {
            let mut prefill = Vec::new();
            for _ in 0..3 {
                backend.reset_cache();
                let t = Instant::now();
                backend.logits_for(&prompt).unwrap();
                prefill.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let mut line = format!(
                "round {round} {}: prefill {} tokens {:.0} ms; pass by tokens fed:",
                dir.display(),
                prompt.len(),
                median(prefill)
            );
            for k in [1usize, 2, 3, 4, 5, 7] {
                let mut full = prompt.clone();
                full.extend_from_slice(&cont[..k.min(cont.len())]);
                let mut times = Vec::new();
                for _ in 0..5 {
                    backend.logits_for(&prompt).unwrap();
                    let t = Instant::now();
                    backend.logits_for(&full).unwrap();
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                line += &format!(" {k}: {:.1} ms", median(times));
            }
            println!("{line}");
        }
    }
}
