//! `moat bench`'s speculation section: prompt-lookup speculative decoding off and on, on the same
//! loaded model, in interleaved rounds (off then on, on then off in the next round), on frozen
//! typing fixtures in three languages (`bench/fixtures/typing_sample.{rs,py,ts}`, compiled in).
//!
//! Per fixture, round and setting:
//! - decode: the file up to the typed line (its last [`CONTEXT`] tokens) is in the KV cache;
//!   `generate` continues it for [`DECODE_TOKENS`] tokens without a stop check: tokens/s.
//! - step: the keystroke step through `generate` ([`CONTEXT`] tokens cached, 1 new, then
//!   [`STEP_GENERATED`] generated).
//! - typing: the fixture's line typed one character at a time through the real pipeline (server
//!   defaults, KV reuse on), as the main keystroke run: mean and p50 per keystroke.
//!
//! Acceptance comes from the backend's counters during the "on" runs: accepted draft tokens per
//! verification pass and tokens decoded per forward pass.
//! Must not: leave speculation other than it found it.

use std::time::Instant;

use anyhow::Result;
use moat_model::{Backend, CancelToken, GenerateRequest, Healing, OnnxBackend, SpeculationStats};
use moat_syntax::Language;
use serde_json::{Value, json};

use super::{STEP_GENERATED, ms, percentile, round, type_line_in, typing_setup_in};

/// A frozen file typed by the benchmark.
struct Fixture {
    name: &'static str,
    language: Language,
    comment: &'static str,
    text: &'static str,
}

const FIXTURES: [Fixture; 3] = [
    Fixture {
        name: "bench/fixtures/typing_sample.rs",
        language: Language::Rust,
        comment: "//",
        text: include_str!("../../../../bench/fixtures/typing_sample.rs"),
    },
    Fixture {
        name: "bench/fixtures/typing_sample.py",
        language: Language::Python,
        comment: "#",
        text: include_str!("../../../../bench/fixtures/typing_sample.py"),
    },
    Fixture {
        name: "bench/fixtures/typing_sample.ts",
        language: Language::TypeScript,
        comment: "//",
        text: include_str!("../../../../bench/fixtures/typing_sample.ts"),
    },
];

/// Tokens of the file before the typed line.
const CONTEXT: usize = 1024;
/// Tokens generated in the decode measurement.
const DECODE_TOKENS: usize = 48;
/// Characters typed per line (the first of the line: the typing run's share of the section's
/// time stays bounded, `--quick` or not).
const TYPED_CHARS: usize = 24;

/// One fixture's figures in one round with one setting.
#[derive(Default)]
struct Run {
    decode_tokens_per_s: f64,
    step_ms: f64,
    typing_mean_ms: f64,
    typing_p50_ms: f64,
    decode: SpeculationStats,
    step: SpeculationStats,
    typing: SpeculationStats,
}

/// The speculation section of the report (see the module doc), over `rounds` (≥ 1) rounds.
pub(super) fn measure(backend: &OnnxBackend, rounds: usize, debounce_ms: f64) -> Result<Value> {
    let default_on = backend.manifest().runtime.speculative.unwrap_or(true);
    if !backend.can_speculate() {
        return Ok(json!({
            "measured": false,
            "on_by_default": default_on,
            "why": "the model cannot verify drafts: its logits are for the last position only (a builder export with prune_lm_head=true and no logits_to_keep input) or its KV layout is concat",
        }));
    }
    let was_on = backend.speculating();
    let result = measure_all(backend, rounds.max(1), debounce_ms);
    backend.set_speculation(was_on);
    let languages = result?;
    Ok(json!({
        "measured": true,
        "on_by_default": default_on,
        "rounds": rounds.max(1),
        "protocol": format!(
            "per fixture and round, speculation off and on (order alternating by round): decode = {DECODE_TOKENS} tokens generated after ~{CONTEXT} cached tokens of the file; step = {CONTEXT} cached + 1 new token, {STEP_GENERATED} generated; typing = the line's first {TYPED_CHARS} characters typed through the pipeline, KV reuse on. Speed-ups are off/on per round (min, median, max)."
        ),
        "languages": languages,
    }))
}

fn measure_all(backend: &OnnxBackend, rounds: usize, debounce_ms: f64) -> Result<Vec<Value>> {
    // runs[fixture][setting: 0 off, 1 on][round]
    let mut runs: Vec<[Vec<Run>; 2]> = FIXTURES.iter().map(|_| Default::default()).collect();
    let setups: Vec<_> = FIXTURES
        .iter()
        .map(|f| {
            let (doc, cursor, line) =
                typing_setup_in(f.text, backend.tokenizer(), CONTEXT, f.comment);
            let typed: String = line.chars().take(TYPED_CHARS).collect();
            (doc, cursor, typed)
        })
        .collect();
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for (i, fixture) in FIXTURES.iter().enumerate() {
            let (doc, cursor, typed) = &setups[i];
            for on in order {
                backend.set_speculation(on);
                let run = one_run(backend, fixture, doc, *cursor, typed, debounce_ms)?;
                runs[i][usize::from(on)].push(run);
            }
        }
    }
    let mut out = Vec::new();
    for ((fixture, (_, _, typed)), [off, on]) in FIXTURES.iter().zip(&setups).zip(&runs) {
        let total = |get: &dyn Fn(&Run) -> SpeculationStats| {
            on.iter()
                .map(get)
                .fold(SpeculationStats::default(), |a, b| a + b)
        };
        let (decode, step, typing) = (
            total(&|r| r.decode),
            total(&|r| r.step),
            total(&|r| r.typing),
        );
        let series = |get: &dyn Fn(&Run) -> f64, higher_is_faster: bool| {
            let (a, b): (Vec<f64>, Vec<f64>) =
                off.iter().zip(on).map(|(x, y)| (get(x), get(y))).unzip();
            let speedup: Vec<f64> = a
                .iter()
                .zip(&b)
                .map(|(x, y)| {
                    if higher_is_faster {
                        y / x.max(1e-9)
                    } else {
                        x / y.max(1e-9)
                    }
                })
                .collect();
            json!({
                "off": a.iter().map(|&x| round(x, 2)).collect::<Vec<_>>(),
                "on": b.iter().map(|&x| round(x, 2)).collect::<Vec<_>>(),
                "speedup": spread(&speedup),
            })
        };
        let language = format!("{:?}", fixture.language).to_lowercase();
        let tps = series(&|r| r.decode_tokens_per_s, true);
        let step_ms = series(&|r| r.step_ms, false);
        let typing_mean = series(&|r| r.typing_mean_ms, false);
        eprintln!(
            "moat bench: speculation {language:10} accepted/verification: decode {:.2}, step {:.2}, typing {:.2}; speed-up (off/on, min..max over rounds): decode tokens/s {}, step {}, typing mean {}",
            decode.accepted_per_verify(),
            step.accepted_per_verify(),
            typing.accepted_per_verify(),
            range_text(&tps["speedup"]),
            range_text(&step_ms["speedup"]),
            range_text(&typing_mean["speedup"]),
        );
        out.push(json!({
            "language": language,
            "file": fixture.name,
            "typed": typed,
            "acceptance": {
                "decode": stats_json(&decode),
                "step": stats_json(&step),
                "typing": stats_json(&typing),
            },
            "decode_tokens_per_s": tps,
            "step_ms": step_ms,
            "typing_mean_ms": typing_mean,
            "typing_p50_ms": series(&|r| r.typing_p50_ms, false),
        }));
    }
    Ok(out)
}

fn one_run(
    backend: &OnnxBackend,
    fixture: &Fixture,
    doc: &str,
    cursor: usize,
    typed: &str,
    debounce_ms: f64,
) -> Result<Run> {
    let tok = backend.tokenizer();
    let ids = tok.encode(&doc[..cursor]);
    let context = ids[ids.len().saturating_sub(CONTEXT + 1)..].to_vec();
    let cached = &context[..context.len() - 1];
    let generate = |prompt: &[u32], max: usize| {
        let req = GenerateRequest::new(prompt.to_vec(), max, Healing::none(), None);
        backend.generate(&req, &CancelToken::new())
    };
    let mut run = Run::default();

    // Decode: the cache holds the file up to the line; only generation is timed.
    backend.reset_cache();
    generate(cached, 1)?;
    let before = backend.speculation_stats();
    let start = Instant::now();
    let g = generate(cached, DECODE_TOKENS)?;
    let seconds = start.elapsed().as_secs_f64();
    run.decode = backend.speculation_stats().since(&before);
    run.decode_tokens_per_s = g.tokens.len() as f64 / seconds.max(1e-9);

    // The keystroke step: one new token, then STEP_GENERATED generated (the cache still holds
    // `cached`: the decode's output after it is rewound).
    let before = backend.speculation_stats();
    let start = Instant::now();
    generate(&context, STEP_GENERATED + 1)?;
    run.step_ms = ms(start.elapsed());
    run.step = backend.speculation_stats().since(&before);

    // Typing through the pipeline.
    let before = backend.speculation_stats();
    let (latencies, _) = type_line_in(
        backend,
        (fixture.name, fixture.language),
        doc,
        cursor,
        typed,
        true,
        debounce_ms,
    )?;
    run.typing = backend.speculation_stats().since(&before);
    run.typing_mean_ms = latencies.mean_ms;
    run.typing_p50_ms = percentile(&latencies.latencies_ms, 50.0);
    Ok(run)
}

fn stats_json(s: &SpeculationStats) -> Value {
    json!({
        "decode_steps": s.model_steps,
        "verify_steps": s.verify_steps,
        "drafted": s.drafted,
        "accepted": s.accepted,
        "recomputed": s.recomputed,
        "generated": s.generated,
        "accepted_per_verify": round(s.accepted_per_verify(), 3),
        "tokens_per_step": round(s.tokens_per_step(), 3),
    })
}

/// `{min, median, max}` of `v` (rounded).
fn spread(v: &[f64]) -> Value {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |i: usize| s.get(i).map_or(0.0, |&x| round(x, 3));
    json!({"min": at(0), "median": at(s.len() / 2), "max": at(s.len().saturating_sub(1))})
}

fn range_text(v: &Value) -> String {
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    format!("{:.2}–{:.2}x", f("min"), f("max"))
}

/// The section's lines in `moat bench`'s table.
pub(super) fn table(r: &Value) -> String {
    if r["measured"].as_bool() != Some(true) {
        return format!(
            "speculation: not measured ({})\n",
            r["why"].as_str().unwrap_or("?")
        );
    }
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let span = |v: &Value| {
        let xs: Vec<f64> = v
            .as_array()
            .map_or(Vec::new(), |a| a.iter().map(f).collect());
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0, f64::max);
        format!("{lo:.1}–{hi:.1}")
    };
    let mut out = format!(
        "speculation (off vs on, {} interleaved rounds; on by default: {}):\n",
        r["rounds"].as_u64().unwrap_or(0),
        r["on_by_default"].as_bool().unwrap_or(false)
    );
    for l in r["languages"].as_array().into_iter().flatten() {
        let a = &l["acceptance"];
        out.push_str(&format!(
            "  {:10} accepted/verification {:.2} (decode) {:.2} (typing); decode {} vs {} tokens/s ({}); step {} vs {} ms ({}); typing mean {} vs {} ms ({})\n",
            l["language"].as_str().unwrap_or("?"),
            f(&a["decode"]["accepted_per_verify"]),
            f(&a["typing"]["accepted_per_verify"]),
            span(&l["decode_tokens_per_s"]["off"]),
            span(&l["decode_tokens_per_s"]["on"]),
            range_text(&l["decode_tokens_per_s"]["speedup"]),
            span(&l["step_ms"]["off"]),
            span(&l["step_ms"]["on"]),
            range_text(&l["step_ms"]["speedup"]),
            span(&l["typing_mean_ms"]["off"]),
            span(&l["typing_mean_ms"]["on"]),
            range_text(&l["typing_mean_ms"]["speedup"]),
        ));
    }
    out
}
