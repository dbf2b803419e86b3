//! `moat eval TASKS.jsonl`: completion quality of a model on a task set, through the very pipeline
//! the server runs (`moat_complete::complete` with the server's default settings, the same
//! tree-sitter parse, the same post-processing).
//!
//! Owns: reading task files, building each task's document for the chosen context ablation,
//! scoring, the summary table, the JSON report and `--compare`.
//! Must not: implement completion logic of its own: a difference between `moat eval` and the
//! editor would make the figures lie.
//!
//! Task file: one JSON object per line, `{"id","language","prefix","suffix","expected","repo"?,
//! "path"?}` (other fields are ignored). The document is `prefix + suffix` with the cursor at
//! `prefix.len()`; `language` is a moat language name or LSP id, else it comes from `path`.
//!
//! Metrics (per language and overall):
//! - `exact_match_line`: the suggestion's first line equals the expected first line (trailing
//!   whitespace ignored);
//! - `exact_match_span`: the whole suggestion equals the whole expected text (trailing whitespace
//!   ignored);
//! - `edit_similarity`: 1 − normalized Levenshtein distance (in chars) between the expected text
//!   and the suggestion cut to as many lines as the expected text has;
//! - `empty_rate`: share of tasks with no suggestion (the pipeline returned nothing worth showing);
//! - latency p50/p95 of the pipeline call, generated and prompt tokens.
//!
//! Every task starts from an empty KV cache (`reset_cache`), so results do not depend on task
//! order or `--limit`, and latency is the cold-prompt latency (`moat bench` measures the warm,
//! keystroke-to-keystroke case).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use moat_complete::{CompletionInput, CompletionSettings, Snippet, complete};
use moat_index::Index;
use moat_model::{
    Backend, CancelToken, ContextFormat, ModelError, OnnxBackend, OnnxOptions, RemoteBackend,
};
use moat_syntax::{Language, SyntaxTree};
use serde::{Deserialize, Serialize};

use crate::{ModelArgs, model_path};

#[derive(Args)]
pub struct EvalArgs {
    /// Task file (JSON lines).
    tasks: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// What the model sees: `none` = only the cursor's line, `file` = the whole file (windows
    /// as in the editor), `repo` = file + snippets the workspace index retrieves from the task's
    /// repository (as the server does).
    #[arg(long, value_enum, default_value_t = ContextMode::File)]
    context: ContextMode,
    /// Folders holding the tasks' repositories (`--context repo`): a task's `repo` is looked up
    /// as an absolute path, then as a folder of that name here (repeatable), next to the task
    /// file, and in `$CARGO_HOME/registry/src/*` (crates the build downloaded).
    #[arg(long = "repos", value_name = "DIR")]
    repos: Vec<PathBuf>,
    /// Share of the prompt held back for repository snippets (`--context repo`); default: the
    /// server's.
    #[arg(long, value_name = "0..0.9")]
    repo_share: Option<f32>,
    /// Evaluate only the first N tasks.
    #[arg(long)]
    limit: Option<usize>,
    /// Write the full report (summary and every task) as JSON to this file (`-` = stdout,
    /// instead of the table).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print the differences against an earlier `--json` report.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Most tokens per suggestion (the server's default is 64).
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Use the manifest's `[remote]` server even when it also has `[onnx]`.
    #[arg(long)]
    remote: bool,
    /// Instead of scoring: the warm per-keystroke cost of repository context on the first N
    /// tasks (the expected line typed one character at a time, a request per keystroke, the KV
    /// cache kept between them): retrieval time and the pipeline's time with and without the
    /// snippets.
    #[arg(long, value_name = "N")]
    keystroke_cost: Option<usize>,
    /// Lay repository context out in this format instead of the model's (to compare layouts).
    #[arg(long, value_enum)]
    context_format: Option<FormatArg>,
    /// Score the short prompt a request over the server's cold-prompt budget gets (`coldPromptMs`:
    /// a file just opened): about N tokens around the cursor, nothing from elsewhere, one line.
    #[arg(long, value_name = "N")]
    short_prompt: Option<usize>,
}

/// `--context-format`: the manifest's `context.format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Repository,
    FileSeparator,
    Comments,
}

impl From<FormatArg> for ContextFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Repository => ContextFormat::Repository,
            FormatArg::FileSeparator => ContextFormat::FileSeparator,
            FormatArg::Comments => ContextFormat::Comments,
        }
    }
}

/// The name a workspace opened at the task's repository would have: its folder's name.
fn repo_label(repo: &str) -> Option<String> {
    Path::new(repo)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextMode {
    /// Only the text of the cursor's line (before and after the cursor).
    None,
    /// The whole file, cut into prefix/suffix windows by the pipeline (what the editor gets).
    File,
    /// The file plus snippets from the rest of the repository.
    Repo,
}

/// One evaluation task, as read from a task file.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Task {
    #[serde(deserialize_with = "id_as_string")]
    pub id: String,
    #[serde(default)]
    pub language: Option<String>,
    pub prefix: String,
    pub suffix: String,
    pub expected: String,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

fn id_as_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "id must be a string or a number, not {other}"
        ))),
    }
}

/// Where repository context comes from in `--context repo`: the task, the document text and the
/// cursor in, snippets (least useful first, as `CompletionInput::snippets` wants) out.
pub type ContextProvider<'a> = &'a dyn Fn(&Task, &str, usize) -> Vec<Snippet>;

/// `--context repo`: each task's repository is indexed once by `moat-index` (cached where the
/// server caches it, so a second run only re-reads changed files) and queried through the
/// server's own context gathering ([`moat_context::gather`]) with the server's default
/// budget, but without its deadline, so that the figures are deterministic.
///
/// The workspace is the repository as it is on disk, task line included; the retrieval never
/// returns chunks or definitions of the query's own file, so the removed line cannot leak.
pub struct RepositoryContext {
    roots: Vec<PathBuf>,
    budget_bytes: usize,
    indexes: RefCell<HashMap<String, Option<Index>>>,
    /// Repositories that were not found or could not be indexed, with the reason.
    pub unavailable: RefCell<BTreeMap<String, String>>,
}

impl RepositoryContext {
    pub fn new(extra_roots: &[PathBuf], task_file: &Path, budget_bytes: usize) -> Self {
        let mut roots = extra_roots.to_vec();
        if let Some(dir) = task_file.parent() {
            roots.push(if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir.to_path_buf()
            });
        }
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        if let Some(Ok(entries)) =
            cargo_home.map(|c| std::fs::read_dir(c.join("registry").join("src")))
        {
            let mut registries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            registries.sort();
            roots.extend(registries);
        }
        Self {
            roots,
            budget_bytes,
            indexes: RefCell::new(HashMap::new()),
            unavailable: RefCell::new(BTreeMap::new()),
        }
    }

    fn locate(&self, repo: &str) -> Option<PathBuf> {
        let path = Path::new(repo);
        if path.is_absolute() {
            return path.is_dir().then(|| path.to_path_buf());
        }
        self.roots
            .iter()
            .map(|r| r.join(repo))
            .find(|candidate| candidate.is_dir())
    }

    fn open(&self, repo: &str) -> Result<Index, String> {
        let root = self.locate(repo).ok_or_else(|| {
            format!(
                "repository not found (looked in {})",
                self.roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let index = moat_index::open_workspace(&root).map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        match index.refresh(&mut |_| {}) {
            Ok(_) => {}
            // Another process (a second `moat eval`, an editor) is writing this index: search
            // what it has written; the figures are then as fresh as its last commit.
            Err(moat_index::Error::ReadOnly(_)) => eprintln!(
                "moat eval: {} is being indexed by another process; searching its index read-only",
                root.display()
            ),
            Err(e) => return Err(e.to_string()),
        }
        eprintln!(
            "moat eval: indexed {} ({} files, {:.1} s)",
            root.display(),
            index.stats().files,
            started.elapsed().as_secs_f64()
        );
        Ok(index)
    }

    /// The snippets for `task` (none when it names no repository or path, or its repository
    /// is unavailable: recorded in [`Self::unavailable`]).
    pub fn snippets(&self, task: &Task, text: &str, cursor: usize) -> Vec<Snippet> {
        let (Some(repo), Some(path)) = (&task.repo, &task.path) else {
            return Vec::new();
        };
        let mut indexes = self.indexes.borrow_mut();
        let index = indexes.entry(repo.clone()).or_insert_with(|| {
            self.open(repo)
                .map_err(|e| {
                    eprintln!(
                        "moat eval: repository {repo}: {e}; its tasks get no repository context"
                    );
                    self.unavailable.borrow_mut().insert(repo.clone(), e);
                })
                .ok()
        });
        match index {
            Some(index) => moat_context::gather(
                index,
                &moat_context::Request {
                    path,
                    text,
                    cursor,
                    open_documents: &[],
                    budget_bytes: self.budget_bytes,
                    deadline: None,
                },
            ),
            None => Vec::new(),
        }
    }
}

/// A model behind the pipeline, either in-process or on a server.
pub enum AnyBackend {
    Onnx(OnnxBackend),
    Remote(RemoteBackend),
}

impl AnyBackend {
    /// The manifest's `[onnx]` model, or its `[remote]` server when it has no `[onnx]` (or when
    /// `remote` is set).
    pub fn load(args: &ModelArgs, remote: bool) -> Result<Self> {
        let path = model_path(&args.model)?;
        let manifest = moat_model::Manifest::load(&path)
            .with_context(|| format!("cannot load the model {}", path.display()))?;
        if remote || (manifest.onnx.is_none() && manifest.remote.is_some()) {
            let backend = RemoteBackend::load(&path)
                .with_context(|| format!("cannot use the remote model {}", path.display()))?;
            return Ok(AnyBackend::Remote(backend));
        }
        let options = OnnxOptions {
            threads: args.threads,
            ort_library: args.onnxruntime.clone(),
        };
        let backend = OnnxBackend::load(&path, &options)
            .with_context(|| format!("cannot load the model {}", path.display()))?;
        Ok(AnyBackend::Onnx(backend))
    }

    pub fn backend(&self) -> &dyn Backend {
        match self {
            AnyBackend::Onnx(b) => b,
            AnyBackend::Remote(b) => b,
        }
    }

    /// Forgets cached state so the next request does not depend on the previous one.
    pub fn reset(&self) {
        if let AnyBackend::Onnx(b) = self {
            b.reset_cache();
        }
    }
}

/// A task's language: a moat language name or LSP id, else from the path's extension. The label
/// is what the report groups by.
pub fn task_language(task: &Task) -> (Option<Language>, String) {
    let by_name = task.language.as_deref().and_then(|name| {
        let lower = name.to_ascii_lowercase();
        Language::all()
            .iter()
            .copied()
            .find(|l| l.name() == lower)
            .or_else(|| Language::from_lsp_id(&lower))
    });
    let language = by_name.or_else(|| {
        task.path
            .as_deref()
            .and_then(|p| Language::from_path(Path::new(p)))
    });
    let label = match (language, &task.language) {
        (Some(l), _) => l.name().to_string(),
        (None, Some(given)) if !given.is_empty() => given.to_ascii_lowercase(),
        _ => "unknown".to_string(),
    };
    (language, label)
}

/// The document and cursor the model gets for `task` under `mode`.
pub fn task_document(task: &Task, mode: ContextMode) -> (String, usize) {
    match mode {
        ContextMode::None => {
            let before = &task.prefix[task.prefix.rfind('\n').map_or(0, |i| i + 1)..];
            let after = &task.suffix[..task.suffix.find('\n').unwrap_or(task.suffix.len())];
            (format!("{before}{after}"), before.len())
        }
        ContextMode::File | ContextMode::Repo => {
            (format!("{}{}", task.prefix, task.suffix), task.prefix.len())
        }
    }
}

fn first_line(s: &str) -> &str {
    s.split('\n').next().unwrap_or_default().trim_end()
}

/// Scores of one suggestion against the expected text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub exact_match_line: bool,
    pub exact_match_span: bool,
    pub edit_similarity: f64,
    pub empty: bool,
}

pub fn score(suggestion: &str, expected: &str) -> Scores {
    let lines = expected.trim_end().split('\n').count().max(1);
    let cut: Vec<&str> = suggestion.split('\n').take(lines).collect();
    let cut = cut.join("\n");
    Scores {
        exact_match_line: first_line(suggestion) == first_line(expected),
        exact_match_span: suggestion.trim_end() == expected.trim_end(),
        edit_similarity: strsim::normalized_levenshtein(cut.trim_end(), expected.trim_end()),
        empty: suggestion.trim().is_empty(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    pub id: String,
    pub language: String,
    pub suggestion: String,
    pub expected: String,
    pub exact_match_line: bool,
    pub exact_match_span: bool,
    pub edit_similarity: f64,
    pub empty: bool,
    pub latency_ms: f64,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// The repository snippets the task got, as `path (bytes)`, least useful first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub tasks: usize,
    pub exact_match_line: f64,
    pub exact_match_span: f64,
    pub edit_similarity: f64,
    pub empty_rate: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub generated_tokens_mean: f64,
    pub generated_tokens_total: usize,
    pub prompt_tokens_mean: f64,
    pub errors: usize,
}

/// Nearest-rank percentile of `values` (sorted here); 0 for none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

pub fn summarize<'a>(results: impl IntoIterator<Item = &'a TaskResult>) -> Summary {
    let results: Vec<&TaskResult> = results.into_iter().collect();
    let n = results.len();
    if n == 0 {
        return Summary::default();
    }
    let share =
        |f: &dyn Fn(&TaskResult) -> bool| results.iter().filter(|r| f(r)).count() as f64 / n as f64;
    let latencies: Vec<f64> = results.iter().map(|r| r.latency_ms).collect();
    let generated: usize = results.iter().map(|r| r.generated_tokens).sum();
    Summary {
        tasks: n,
        exact_match_line: share(&|r| r.exact_match_line),
        exact_match_span: share(&|r| r.exact_match_span),
        edit_similarity: results.iter().map(|r| r.edit_similarity).sum::<f64>() / n as f64,
        empty_rate: share(&|r| r.empty),
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p95: percentile(&latencies, 95.0),
        generated_tokens_mean: generated as f64 / n as f64,
        generated_tokens_total: generated,
        prompt_tokens_mean: results.iter().map(|r| r.prompt_tokens).sum::<usize>() as f64
            / n as f64,
        errors: results.iter().filter(|r| r.error.is_some()).count(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    pub tool: String,
    pub moat_version: String,
    pub date: String,
    pub tasks_file: String,
    pub model: String,
    pub context: String,
    pub threads: usize,
    pub max_tokens: usize,
    /// Ctrl-C stopped the run: the figures cover the tasks done so far.
    pub interrupted: bool,
    /// 1-based line numbers of task lines that could not be read (skipped).
    pub malformed_lines: Vec<usize>,
    pub notes: Vec<String>,
    pub overall: Summary,
    pub per_language: BTreeMap<String, Summary>,
    pub results: Vec<TaskResult>,
}

/// Reads a task file; malformed lines are reported on stderr with their line number and skipped.
pub fn read_tasks(path: &Path) -> Result<(Vec<Task>, Vec<usize>)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the task file {}", path.display()))?;
    let mut tasks = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "{}:{number}: unreadable line ({e}); skipped",
                    path.display()
                );
                bad.push(number);
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Task>(&line) {
            Ok(task) => tasks.push(task),
            Err(e) => {
                eprintln!("{}:{number}: malformed task ({e}); skipped", path.display());
                bad.push(number);
            }
        }
    }
    Ok((tasks, bad))
}

/// Runs one task through the pipeline. `Err` only for cancellation; other failures are recorded.
pub fn run_task(
    task: &Task,
    mode: ContextMode,
    provider: ContextProvider<'_>,
    settings: &CompletionSettings,
    backend: &AnyBackend,
    cancel: &CancelToken,
) -> Result<TaskResult, ModelError> {
    let (language, label) = task_language(task);
    let (text, cursor) = task_document(task, mode);
    let snippets = match mode {
        ContextMode::Repo => provider(task, &text, cursor),
        _ => Vec::new(),
    };
    if std::env::var_os("MOAT_EVAL_SHOW_CONTEXT").is_some() {
        for s in &snippets {
            eprintln!("--- {} :: {}\n{}", task.id, s.path, s.text);
        }
    }
    // The server names the prompt's repository after its workspace folder.
    let settings = &CompletionSettings {
        repo_name: task.repo.as_deref().and_then(repo_label),
        ..settings.clone()
    };
    backend.reset();
    let started = std::time::Instant::now();
    let tree = language.and_then(|l| SyntaxTree::parse(l, &text));
    let input = CompletionInput {
        text: &text,
        cursor,
        path: task.path.as_deref(),
        language,
        tree: tree.as_ref(),
        snippets: &snippets,
    };
    let outcome = complete(&input, settings, backend.backend(), cancel);
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (suggestion, prompt_tokens, generated_tokens, error) = match outcome {
        Ok(r) => (r.text, r.prompt_tokens, r.generated_tokens, None),
        Err(ModelError::Cancelled) => return Err(ModelError::Cancelled),
        Err(e) => (String::new(), 0, 0, Some(e.to_string())),
    };
    let s = score(&suggestion, &task.expected);
    Ok(TaskResult {
        id: task.id.clone(),
        language: label,
        suggestion,
        expected: task.expected.clone(),
        exact_match_line: s.exact_match_line,
        exact_match_span: s.exact_match_span,
        edit_similarity: s.edit_similarity,
        empty: s.empty,
        latency_ms,
        prompt_tokens,
        generated_tokens,
        context: snippets
            .iter()
            .map(|s| format!("{} ({} B)", s.path, s.text.len()))
            .collect(),
        error,
    })
}

/// `--keystroke-cost`: types each task's expected line into its document one character at a
/// time with a warm model, once without and once with repository snippets, and prints the
/// per-keystroke retrieval time and pipeline times (p50/p95) and their paired difference. The
/// first request of each line (the cold prompt) is not counted.
fn keystroke_cost(
    tasks: &[Task],
    repository: &RepositoryContext,
    settings: &CompletionSettings,
    backend: &AnyBackend,
    cancel: &CancelToken,
) -> Result<()> {
    let mut retrieval = Vec::new();
    let mut plain = Vec::new();
    let mut with_context = Vec::new();
    let mut delta = Vec::new();
    let mut snippet_tokens = Vec::new();
    for task in tasks {
        let (language, _) = task_language(task);
        let typed: Vec<usize> = task
            .expected
            .char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .take_while(|&end| !task.expected[..end].contains('\n'))
            .collect();
        let mut times = [Vec::new(), Vec::new()];
        for (variant, out) in times.iter_mut().enumerate() {
            backend.reset();
            for (k, &end) in std::iter::once(&0).chain(&typed).enumerate() {
                let text = format!("{}{}{}", task.prefix, &task.expected[..end], task.suffix);
                let cursor = task.prefix.len() + end;
                let started = std::time::Instant::now();
                let snippets = if variant == 1 {
                    let s = repository.snippets(task, &text, cursor);
                    if k > 0 {
                        retrieval.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                    s
                } else {
                    Vec::new()
                };
                let tree = language.and_then(|l| SyntaxTree::parse(l, &text));
                let input = CompletionInput {
                    text: &text,
                    cursor,
                    path: task.path.as_deref(),
                    language,
                    tree: tree.as_ref(),
                    snippets: &snippets,
                };
                let settings = CompletionSettings {
                    repo_name: task.repo.as_deref().and_then(repo_label),
                    ..settings.clone()
                };
                let r = complete(&input, &settings, backend.backend(), cancel)?;
                if k == 0 && variant == 1 {
                    snippet_tokens.push(r.prompt_tokens as f64);
                }
                if k > 0 {
                    out.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
        for (a, b) in times[0].iter().zip(&times[1]) {
            delta.push(b - a);
        }
        let [a, b] = times;
        plain.extend(a);
        with_context.extend(b);
    }
    let row = |name: &str, v: &[f64]| {
        format!(
            "{name:<28} {:>9.1} {:>9.1} {:>6}\n",
            percentile(v, 50.0),
            percentile(v, 95.0),
            v.len()
        )
    };
    let mut out = format!(
        "moat eval --keystroke-cost: {} tasks, warm model, {}\n{:<28} {:>9} {:>9} {:>6}\n",
        tasks.len(),
        backend.backend().describe(),
        "per keystroke (ms)",
        "p50",
        "p95",
        "n"
    );
    out += &row("retrieval", &retrieval);
    out += &row("pipeline, file only", &plain);
    out += &row("pipeline + retrieval, repo", &with_context);
    out += &row("repo - file (paired)", &delta);
    out += &format!(
        "prompt tokens with repository context: mean {:.0}\n",
        mean_of(&snippet_tokens)
    );
    crate::print_out(&out);
    Ok(())
}

fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Today's date (UTC) as YYYY-MM-DD, without a date crate.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_date((secs / 86_400) as i64)
}

/// Days since 1970-01-01 → YYYY-MM-DD (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Sets up Ctrl-C: the first press cancels `cancel` (the run stops and writes what it has), a
/// second one exits at once. Returns the flag the run checks.
pub fn install_interrupt(cancel: &CancelToken) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let (f, c) = (flag.clone(), cancel.clone());
    let installed = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            eprintln!("\nmoat: interrupted again, exiting without writing results");
            std::process::exit(130);
        }
        eprintln!("\nmoat: interrupted; writing partial results (Ctrl-C again to quit now)");
        c.cancel();
    });
    if let Err(e) = installed {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
    flag
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let (mut tasks, malformed) = read_tasks(&args.tasks)?;
    if let Some(limit) = args.limit {
        tasks.truncate(limit);
    }
    if tasks.is_empty() {
        bail!("{}: no tasks to run", args.tasks.display());
    }
    let backend = AnyBackend::load(&args.model, args.remote)?;
    let defaults = CompletionSettings::default();
    let settings = CompletionSettings {
        max_new_tokens: args.max_tokens,
        repo_context_share: args.repo_share.unwrap_or(defaults.repo_context_share),
        context_format: args.context_format.map(ContextFormat::from),
        ..defaults
    };
    let settings = match args.short_prompt {
        Some(tokens) => moat_complete::short_prompt_settings(&settings, tokens),
        None => settings,
    };
    let repository = RepositoryContext::new(
        &args.repos,
        &args.tasks,
        moat_lsp::Config::default().repo_context_bytes,
    );
    let provider: ContextProvider<'_> = &|t, text, cursor| repository.snippets(t, text, cursor);
    let mut notes = vec![
        "every task starts from an empty KV cache (cold-prompt latency)".to_string(),
        format!(
            "pipeline settings: server defaults, max_new_tokens = {}, repo_context_share = {}",
            settings.max_new_tokens, settings.repo_context_share
        ),
        format!(
            "context format: {}",
            match settings.context_format {
                Some(f) => format!("{f:?} (--context-format)"),
                None => format!(
                    "{:?} (the model's)",
                    backend.backend().tokenizer().context_format()
                ),
            }
        ),
    ];
    if args.context == ContextMode::Repo {
        notes.push(format!(
            "context repo: snippets from each task's repository (moat-index, the server's \
             retrieval, {} bytes, no deadline)",
            moat_lsp::Config::default().repo_context_bytes
        ));
    }
    if let Some(tokens) = args.short_prompt {
        notes.push(format!(
            "short prompt (--short-prompt {tokens}): prefix {} + suffix {} tokens, no file \
             context, single line; snippets only with --context repo (the server sends none)",
            settings.prefix_tokens, settings.suffix_tokens
        ));
    }
    if let AnyBackend::Remote(_) = backend {
        notes.push("remote backend: latency includes the HTTP round trip".to_string());
    }

    let cancel = CancelToken::new();
    let interrupted = install_interrupt(&cancel);
    if let Some(n) = args.keystroke_cost {
        tasks.truncate(n);
        return keystroke_cost(&tasks, &repository, &settings, &backend, &cancel);
    }
    let bar = progress_bar(tasks.len());
    let mut results: Vec<TaskResult> = Vec::with_capacity(tasks.len());
    let mut exact = 0usize;
    for task in &tasks {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        match run_task(task, args.context, provider, &settings, &backend, &cancel) {
            Ok(r) => {
                exact += usize::from(r.exact_match_line);
                if let Some(e) = &r.error {
                    bar.suspend(|| eprintln!("moat eval: task {}: {e}", r.id));
                }
                results.push(r);
            }
            Err(_) => break,
        }
        bar.inc(1);
        bar.set_message(format!(
            "EM {:.1}%",
            100.0 * exact as f64 / results.len().max(1) as f64
        ));
    }
    bar.finish_and_clear();
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    for (repo, why) in repository.unavailable.borrow().iter() {
        notes.push(format!(
            "repository {repo} unavailable ({why}): no repository context"
        ));
    }

    let mut per_language: BTreeMap<String, Vec<&TaskResult>> = BTreeMap::new();
    for r in &results {
        per_language.entry(r.language.clone()).or_default().push(r);
    }
    let report = Report {
        tool: "moat eval".into(),
        moat_version: env!("CARGO_PKG_VERSION").into(),
        date: today(),
        tasks_file: args.tasks.display().to_string(),
        model: backend.backend().describe(),
        context: format!("{:?}", args.context).to_lowercase(),
        threads: match &backend {
            AnyBackend::Onnx(b) => b.threads(),
            AnyBackend::Remote(_) => args.model.threads,
        },
        max_tokens: args.max_tokens,
        interrupted: was_interrupted,
        malformed_lines: malformed,
        notes,
        overall: summarize(&results),
        per_language: per_language
            .into_iter()
            .map(|(k, v)| (k, summarize(v)))
            .collect(),
        results,
    };
    let to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        if to_stdout {
            crate::print_out(&json);
        } else {
            write_file(path, &json)?;
            eprintln!("moat eval: report written to {}", path.display());
        }
    }
    if !to_stdout {
        print!("{}", table(&report));
    }
    if let Some(old) = &args.compare {
        let text = std::fs::read_to_string(old)
            .with_context(|| format!("cannot read {}", old.display()))?;
        let old: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a moat eval report", old.display()))?;
        let diff = compare(&old, &report);
        if to_stdout {
            eprint!("{diff}");
        } else {
            print!("{diff}");
        }
    }
    if was_interrupted {
        bail!(
            "interrupted after {} of {} tasks (the figures above cover those)",
            report.results.len(),
            tasks.len()
        );
    }
    Ok(())
}

pub fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn summary_row(name: &str, s: &Summary) -> String {
    format!(
        "{name:<12} {:>5} {:>8.1}% {:>8.1}% {:>9.3} {:>7.1}% {:>8.1} {:>8.1} {:>7.1}\n",
        s.tasks,
        100.0 * s.exact_match_line,
        100.0 * s.exact_match_span,
        s.edit_similarity,
        100.0 * s.empty_rate,
        s.latency_ms_p50,
        s.latency_ms_p95,
        s.generated_tokens_mean,
    )
}

/// The human-readable summary.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "moat eval: {} ({} tasks{}), context {}, model {}\n",
        report.tasks_file,
        report.overall.tasks,
        if report.interrupted {
            ", INTERRUPTED"
        } else {
            ""
        },
        report.context,
        report.model
    );
    out.push_str(&format!(
        "{:<12} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7}\n",
        "language", "n", "EM line", "EM span", "edit sim", "empty", "p50 ms", "p95 ms", "tokens"
    ));
    for (lang, s) in &report.per_language {
        out.push_str(&summary_row(lang, s));
    }
    out.push_str(&summary_row("overall", &report.overall));
    if !report.malformed_lines.is_empty() {
        out.push_str(&format!(
            "skipped malformed lines: {:?}\n",
            report.malformed_lines
        ));
    }
    if report.overall.errors > 0 {
        out.push_str(&format!(
            "{} task(s) failed (see the report's `error` fields)\n",
            report.overall.errors
        ));
    }
    out
}

fn delta_row(name: &str, old: &Summary, new: &Summary) -> String {
    let pct = |o: f64, n: f64| {
        format!(
            "{:.1}→{:.1} ({:+.1})",
            100.0 * o,
            100.0 * n,
            100.0 * (n - o)
        )
    };
    format!(
        "{name:<12} EM line {}  EM span {}  edit sim {:.3}→{:.3} ({:+.3})  empty {}  p50 {:.1}→{:.1} ms\n",
        pct(old.exact_match_line, new.exact_match_line),
        pct(old.exact_match_span, new.exact_match_span),
        old.edit_similarity,
        new.edit_similarity,
        new.edit_similarity - old.edit_similarity,
        pct(old.empty_rate, new.empty_rate),
        old.latency_ms_p50,
        new.latency_ms_p50,
    )
}

/// What changed between two reports: the summaries and the tasks whose first-line match flipped.
pub fn compare(old: &Report, new: &Report) -> String {
    let mut out = format!(
        "compare: {} ({}, {}) → this run\n",
        old.tasks_file, old.model, old.date
    );
    let mut langs: Vec<&String> = old
        .per_language
        .keys()
        .chain(new.per_language.keys())
        .collect();
    langs.sort();
    langs.dedup();
    for lang in langs {
        match (old.per_language.get(lang), new.per_language.get(lang)) {
            (Some(o), Some(n)) => out.push_str(&delta_row(lang, o, n)),
            (Some(_), None) => out.push_str(&format!("{lang:<12} only in the old report\n")),
            (None, Some(_)) => out.push_str(&format!("{lang:<12} only in this run\n")),
            (None, None) => {}
        }
    }
    out.push_str(&delta_row("overall", &old.overall, &new.overall));
    let before: HashMap<&str, &TaskResult> =
        old.results.iter().map(|r| (r.id.as_str(), r)).collect();
    let (mut gained, mut lost, mut changed, mut common) = (Vec::new(), Vec::new(), 0, 0);
    for r in &new.results {
        let Some(o) = before.get(r.id.as_str()) else {
            continue;
        };
        common += 1;
        if o.suggestion != r.suggestion {
            changed += 1;
        }
        match (o.exact_match_line, r.exact_match_line) {
            (false, true) => gained.push(r.id.as_str()),
            (true, false) => lost.push(r.id.as_str()),
            _ => {}
        }
    }
    out.push_str(&format!(
        "tasks in both: {common}; suggestion changed: {changed}; newly right: {}; newly wrong: {}\n",
        gained.len(),
        lost.len()
    ));
    let show = |ids: &[&str]| {
        let mut s = ids.iter().take(10).copied().collect::<Vec<_>>().join(", ");
        if ids.len() > 10 {
            s.push_str(", …");
        }
        s
    };
    if !gained.is_empty() {
        out.push_str(&format!("  newly right: {}\n", show(&gained)));
    }
    if !lost.is_empty() {
        out.push_str(&format!("  newly wrong: {}\n", show(&lost)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(prefix: &str, suffix: &str, expected: &str) -> Task {
        Task {
            id: "t".into(),
            language: Some("python".into()),
            prefix: prefix.into(),
            suffix: suffix.into(),
            expected: expected.into(),
            repo: None,
            path: None,
        }
    }

    #[test]
    fn scores() {
        let s = score("return a + b\n    x = 1", "return a + b");
        assert!(s.exact_match_line && !s.exact_match_span && !s.empty);
        assert_eq!(s.edit_similarity, 1.0);
        let s = score("", "return a");
        assert!(s.empty && !s.exact_match_line);
        assert_eq!(s.edit_similarity, 0.0);
        let s = score("return b  ", "return a");
        assert!((s.edit_similarity - 7.0 / 8.0).abs() < 1e-9);
    }

    #[test]
    fn context_modes_cut_the_document() {
        let t = task("import os\ndef f():\n    ", "\nprint(f())\n", "return 1");
        assert_eq!(
            task_document(&t, ContextMode::File),
            ("import os\ndef f():\n    \nprint(f())\n".to_string(), 23)
        );
        assert_eq!(
            task_document(&t, ContextMode::None),
            ("    ".to_string(), 4)
        );
        let t = task("x = f(", ")\ny", "1");
        assert_eq!(
            task_document(&t, ContextMode::None),
            ("x = f()".to_string(), 6)
        );
    }

    #[test]
    fn languages_by_name_id_or_path() {
        let mut t = task("", "", "x");
        assert_eq!(task_language(&t).1, "python");
        t.language = Some("typescriptreact".into());
        assert_eq!(task_language(&t).0, Some(Language::Tsx));
        t.language = None;
        t.path = Some("src/a.rs".into());
        assert_eq!(task_language(&t).1, "rust");
        t.language = Some("cobol".into());
        t.path = None;
        assert_eq!(task_language(&t), (None, "cobol".to_string()));
    }

    #[test]
    fn malformed_lines_are_skipped_with_their_numbers() {
        let dir = std::env::temp_dir().join(format!("moat-eval-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tasks.jsonl");
        std::fs::write(
            &path,
            "{\"id\":1,\"prefix\":\"a\",\"suffix\":\"\",\"expected\":\"b\",\"extra\":true}\n\
             not json\n\n{\"id\":\"x\",\"prefix\":\"a\"}\n\
             {\"id\":\"y\",\"prefix\":\"a\",\"suffix\":\"\",\"expected\":\"c\"}\n",
        )
        .unwrap();
        let (tasks, bad) = read_tasks(&path).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].id, "1");
        assert_eq!(bad, vec![2, 4]);
    }

    #[test]
    fn percentiles_and_dates() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_454), "2026-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
