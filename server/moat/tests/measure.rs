//! `moat eval` and `moat bench` as a user runs them (the real binary, the shipped default model):
//! quality on the checked-in smoke set must not drop below its floor, and the quick benchmark
//! must produce a complete JSON report.
//!
//! Needs the ONNX Runtime library (`scripts/setup.sh` installs it), like the model tests.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Floors for `tests/eval/smoke.jsonl` with `model-assets/default`, context `file`.
///
/// Measured with the shipped default model, moat-cpu-4m (4M parameters trained on 2 CPU cores
/// by `model-assets/train`; see its MODEL_CARD.md): exact match 0% on these 50 tasks (0.1% on
/// the pipeline's 909 held-out tasks), edit similarity 0.15. The exact-match floor is therefore
/// 0, an honest figure rather than a target: raise both when a GPU-trained model ships
/// (tests/eval/README.md). The edit-similarity floor sits a few points under the measured value:
/// it fails when the pipeline stops producing suggestions or mangles them.
const EXACT_MATCH_FLOOR: f64 = 0.0;
const EDIT_SIMILARITY_FLOOR: f64 = 0.12;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn moat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
    cmd.current_dir(root()).env_remove("MOAT_MODEL");
    cmd
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moat-measure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run_json(cmd: &mut Command, out: &PathBuf) -> Value {
    let output = cmd.output().expect("cannot run moat");
    assert!(
        output.status.success(),
        "moat failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(out).expect("no JSON report written");
    serde_json::from_str(&text).expect("the report is not valid JSON")
}

#[test]
fn eval_on_the_smoke_set_stays_above_the_floor() {
    let out = scratch("eval.json");
    let report = run_json(
        moat()
            .args([
                "eval",
                "tests/eval/smoke.jsonl",
                "--model",
                "model-assets/default",
            ])
            .arg("--json")
            .arg(&out),
        &out,
    );
    let tasks = std::fs::read_to_string(root().join("tests/eval/smoke.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let overall = &report["overall"];
    assert_eq!(overall["tasks"].as_u64(), Some(tasks as u64));
    assert_eq!(overall["errors"].as_u64(), Some(0), "{overall}");
    assert_eq!(report["interrupted"], Value::Bool(false));
    let em = overall["exact_match_line"].as_f64().unwrap();
    let es = overall["edit_similarity"].as_f64().unwrap();
    assert!(
        em >= EXACT_MATCH_FLOOR,
        "exact match {em:.3} fell below its floor {EXACT_MATCH_FLOOR}"
    );
    assert!(
        es >= EDIT_SIMILARITY_FLOOR,
        "edit similarity {es:.3} fell below its floor {EDIT_SIMILARITY_FLOOR}"
    );
    for lang in ["python", "rust", "c", "javascript", "bash"] {
        assert!(
            report["per_language"][lang]["tasks"].as_u64().unwrap_or(0) > 0,
            "no {lang} tasks in the report"
        );
    }
}

#[test]
fn eval_reports_malformed_lines_and_keeps_going() {
    let tasks = scratch("tasks.jsonl");
    std::fs::write(
        &tasks,
        "{\"id\":\"a\",\"language\":\"python\",\"prefix\":\"def f(x):\\n    \",\"suffix\":\"\\n\",\"expected\":\"return x\"}\n\
         {\"id\": broken\n",
    )
    .unwrap();
    let out = scratch("malformed.json");
    let output = moat()
        .arg("eval")
        .arg(&tasks)
        .args(["--model", "model-assets/default", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(":2: malformed task"), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["malformed_lines"], serde_json::json!([2]));
    assert_eq!(report["overall"]["tasks"].as_u64(), Some(1));
}

#[test]
fn eval_with_a_missing_model_is_a_clear_error() {
    let output = moat()
        .args([
            "eval",
            "tests/eval/smoke.jsonl",
            "--model",
            "/nonexistent/model",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot load the model /nonexistent/model"),
        "{stderr}"
    );
}

#[test]
fn quick_bench_writes_a_complete_report() {
    let out = scratch("bench.json");
    let svg = scratch("bench.svg");
    let report = run_json(
        moat()
            .args([
                "bench",
                "--quick",
                "--model",
                "model-assets/default",
                "--json",
            ])
            .arg(&out)
            .arg("--plot")
            .arg(&svg),
        &out,
    );
    let ttft = report["ttft"].as_array().expect("ttft list");
    assert!(!ttft.is_empty());
    assert!(ttft.iter().all(|t| t["ms_median"].as_f64().unwrap() > 0.0));
    assert!(report["decode"]["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(report["keystroke_step"]["ms_median"].as_f64().unwrap() > 0.0);
    assert_eq!(report["keystroke_step"]["generated"].as_u64(), Some(8));
    for mode in ["reuse_on", "reuse_off"] {
        let k = &report["keystroke"][mode];
        assert!(
            !k["latencies_ms"].as_array().unwrap().is_empty(),
            "{mode}: {k}"
        );
        assert!(k["p95_ms"].as_f64().unwrap() >= k["p50_ms"].as_f64().unwrap());
    }
    // Reuse means computing only the new tokens of each keystroke's prompt.
    let on = report["keystroke"]["reuse_on"]["computed_tokens_mean"]
        .as_f64()
        .unwrap();
    let off = report["keystroke"]["reuse_off"]["computed_tokens_mean"]
        .as_f64()
        .unwrap();
    assert!(on * 10.0 < off, "KV reuse computed {on} tokens vs {off}");
    assert!(report["memory"]["peak_rss_mib"].as_f64().unwrap() > 0.0);
    assert!(
        report["cost"]["per_million_generated_tokens_usd"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(report["load_ms"].as_f64().unwrap() > 0.0);
    // Speculation off and on in three languages, or why it was not measured.
    let spec = &report["speculation"];
    match spec["measured"].as_bool() {
        Some(true) => {
            let languages = spec["languages"].as_array().unwrap();
            assert_eq!(languages.len(), 3, "{spec}");
            for l in languages {
                let on = l["decode_tokens_per_s"]["on"].as_array().unwrap();
                assert!(!on.is_empty() && on.iter().all(|x| x.as_f64().unwrap() > 0.0));
            }
        }
        Some(false) => assert!(spec["why"].is_string(), "{spec}"),
        None => panic!("no speculation section: {spec}"),
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
}

#[test]
fn eval_with_repo_context_indexes_the_tasks_repository() {
    // A repository whose task line needs a name from another file, next to the task file.
    let dir = scratch("repo-context");
    let repo = dir.join("shapes");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("geometry.py"),
        "def rectangle_area_with_margin(width, height, margin):\n    \"\"\"Area of a rectangle grown by margin on every side.\"\"\"\n    return (width + 2 * margin) * (height + 2 * margin)\n",
    )
    .unwrap();
    let prefix = "from geometry import rectangle_area_with_margin\n\n\ndef report(w, h):\n    ";
    let suffix = "\n    return area\n";
    std::fs::write(
        repo.join("main.py"),
        format!("{prefix}area = rectangle_area_with_margin(w, h, 1){suffix}"),
    )
    .unwrap();
    let task = serde_json::json!({
        "id": "shapes/main.py:5", "language": "python", "repo": "shapes", "path": "main.py",
        "prefix": prefix, "suffix": suffix, "expected": "area = rectangle_area_with_margin(w, h, 1)",
    });
    let missing = serde_json::json!({
        "id": "gone/x.py:1", "language": "python", "repo": "no-such-repository", "path": "x.py",
        "prefix": "", "suffix": "\n", "expected": "pass",
    });
    let tasks = dir.join("tasks.jsonl");
    std::fs::write(&tasks, format!("{task}\n{missing}\n")).unwrap();
    let cache = dir.join("cache");
    let run = |context: &str| {
        let out = dir.join(format!("{context}.json"));
        run_json(
            moat()
                .env("XDG_CACHE_HOME", &cache)
                .arg("eval")
                .arg(&tasks)
                .args(["--model", "model-assets/default", "--context", context])
                .arg("--json")
                .arg(&out),
            &out,
        )
    };
    let file = run("file");
    let repo_report = run("repo");
    let prompt = |r: &Value| r["results"][0]["prompt_tokens"].as_u64().unwrap();
    // The definition's signature and doc from geometry.py enter the prompt.
    assert!(
        prompt(&repo_report) > prompt(&file) + 10,
        "repo {} vs file {} prompt tokens",
        prompt(&repo_report),
        prompt(&file)
    );
    assert_eq!(repo_report["overall"]["tasks"].as_u64(), Some(2));
    let notes = repo_report["notes"].to_string();
    assert!(
        notes.contains("repository no-such-repository unavailable"),
        "{notes}"
    );
    // The index is cached where the server keeps it.
    assert!(cache.join("moat").join("index").is_dir());
}
