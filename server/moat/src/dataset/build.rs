//! `moat dataset build PATH... --out DIR`: a fine-tuning data set from a team's git repositories.
//!
//! Owns: reading the tracked files of each repository (`git ls-files`), dropping what must never
//! be trained on (secret-bearing files by name, binary and non-UTF-8 files, files too large to
//! be code), scrubbing secrets from the rest with the index's redaction ([`moat_index::redact_counted`]:
//! patterns and entropy, counted by kind, never printed), marking recently changed files, and
//! handing the result to the model pipeline's `dataset_build.py` (curation shared with the
//! pre-training corpus: quality filters, exact and near dedup; held-out split by file; FIM
//! samples in the base model's own template and tokenizer; the report).
//! Must not: write a secret anywhere (the hand-over file holds only scrubbed text and lives in a
//! temporary folder that is removed), or leave a half-written data set at `--out` (everything is
//! written to a temporary sibling that is renamed at the end). A build killed mid-way leaves its
//! temporary sibling behind, named with its process id; the next build in the same folder removes
//! it, and puts back the data set it had moved aside when the kill came between the two final
//! renames ([`clean_stale`]).
//!
//! Deterministic: files are read in `git ls-files` order, recency is measured from the HEAD
//! commit's date (not the clock), and the pipeline's choices are seeded by file names.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;
use moat_syntax::Language;
use serde::Serialize;

#[derive(Args)]
pub struct BuildArgs {
    /// Local git repositories (their tracked files are read; untracked and ignored files never).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The data set folder to write (replaced atomically when it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// The model the data set is for: an installed model's name (`moat model list`) or a model
    /// folder. Its FIM template and tokenizer shape the samples. Default: the default model.
    #[arg(long)]
    pub base: Option<String>,
    /// Fraction of files held out for evaluation (chosen by a hash of repository and path).
    #[arg(long, default_value_t = 0.1)]
    pub heldout: f64,
    /// Files changed in the last N days before the HEAD commit count `--recent-weight` times
    /// (0: no weighting).
    #[arg(long, default_value_t = 0)]
    pub recent_days: u32,
    /// How many samples a recently changed file gives (each with its own cursor).
    #[arg(long, default_value_t = 2)]
    pub recent_weight: u32,
    /// Most tokens per sample (longer files give several samples, cut at line ends).
    #[arg(long, default_value_t = 1024)]
    pub seq_len: usize,
    /// Seed of the FIM cursor choice (the same seed and files give the same data set).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Files larger than this are dropped without being read.
    #[arg(long, default_value_t = 200_000)]
    pub max_file_bytes: u64,
    /// Accepted suggestions recorded by `moat serve` (its feedback folder or a file; see
    /// docs/feedback.md) become extra training samples. Only records made with
    /// `feedbackSourceText` on carry text; the others are counted and skipped.
    #[arg(long)]
    pub feedback: Option<PathBuf>,
    /// Python with the model pipeline installed (default: MOAT_PYTHON, else
    /// model-assets/train/.venv/bin/python next to or above the binary).
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// One file handed to the pipeline (already scrubbed).
#[derive(Serialize)]
struct FileRecord<'a> {
    repo: &'a str,
    path: &'a str,
    language: &'a str,
    license: &'a str,
    recent: bool,
    content: &'a str,
}

/// What reading the repositories found, handed to the pipeline for the report.
#[derive(Default, Serialize)]
struct Gathered {
    repos: Vec<RepoInfo>,
    tracked_files: usize,
    /// Files dropped before curation, by reason.
    dropped: BTreeMap<&'static str, usize>,
    /// Secrets scrubbed, by kind (counts only).
    secrets_scrubbed: BTreeMap<&'static str, usize>,
    files_with_secrets_scrubbed: usize,
    /// Accepted suggestions read from `--feedback` that became samples.
    feedback_samples: usize,
    /// Accepted suggestions recorded without source text (nothing to train on).
    feedback_without_text: usize,
}

/// One accepted suggestion handed to the pipeline as a FIM sample (already redacted by the
/// server when it was recorded; redacted again here).
#[derive(Serialize)]
struct FeedbackSample<'a> {
    language: &'a str,
    path: &'a str,
    prefix: &'a str,
    suffix: &'a str,
    completion: &'a str,
}

/// Writes the accepted suggestions at `path` to `<work>/feedback.jsonl`.
fn gather_feedback(path: &Path, work: &Path, gathered: &mut Gathered) -> Result<()> {
    let found = moat_lsp::feedback::read_accepted(path, false)
        .with_context(|| format!("cannot read the feedback at {}", path.display()))?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(work.join("feedback.jsonl"))?);
    for sample in &found.samples {
        let mut counts = moat_index::SecretCounts::new();
        let prefix = moat_index::redact_counted(&sample.prefix, &mut counts);
        let suffix = moat_index::redact_counted(&sample.suffix, &mut counts);
        let middle = moat_index::redact_counted(&sample.middle, &mut counts);
        for (kind, n) in counts {
            *gathered.secrets_scrubbed.entry(kind).or_default() += n;
        }
        serde_json::to_writer(
            &mut out,
            &FeedbackSample {
                language: &sample.language,
                path: &sample.path,
                prefix: &prefix,
                suffix: &suffix,
                completion: &middle,
            },
        )?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    gathered.feedback_samples = found.samples.len();
    gathered.feedback_without_text = found.without_text;
    Ok(())
}

#[derive(Serialize)]
struct RepoInfo {
    name: String,
    /// The repository's folder (the pipeline reads its licence file).
    root: PathBuf,
    head: String,
    tracked_files: usize,
    recent_files: usize,
}

/// Runs `git -C dir args...` and returns its stdout.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("cannot run git (is it installed?)")?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(output.stdout)
}

/// The folder to read (a repository's top or a folder inside one: only the files under it are
/// read); a clear error when `path` is not in a git repository.
fn repo_root(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        bail!(
            "{} is not a folder (moat dataset build reads git repositories)",
            path.display()
        );
    }
    git(path, &["rev-parse", "--show-toplevel"]).map_err(|_| {
        anyhow::anyhow!(
            "{} is not a git repository (moat dataset build reads the tracked files of git \
             repositories; run `git init` and commit, or pass the repository's folder)",
            path.display()
        )
    })?;
    path.canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))
}

/// Paths (relative to `root`) changed in commits of the last `days` days before HEAD's commit
/// date.
fn recent_files(root: &Path, days: u32) -> Result<BTreeSet<String>> {
    if days == 0 {
        return Ok(BTreeSet::new());
    }
    let head_time = git(root, &["log", "-1", "--format=%ct"])?;
    let head_time: i64 = String::from_utf8_lossy(&head_time)
        .trim()
        .parse()
        .context("git log gave no commit time")?;
    let since = head_time - i64::from(days) * 86_400;
    let log = git(
        root,
        &[
            "log",
            &format!("--since={since}"),
            "--name-only",
            "--relative",
            "--format=",
            "-z",
        ],
    )?;
    Ok(String::from_utf8_lossy(&log)
        .split(['\0', '\n'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A name for the repository: its folder's name, made unique among the repositories given.
fn repo_name(root: &Path, taken: &BTreeSet<String>) -> String {
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repo".into());
    let mut name = base.clone();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{base}-{k}");
        k += 1;
    }
    name
}

/// Reads the repositories, scrubs secrets, and writes the pipeline's input (`files.jsonl`).
fn gather(args: &BuildArgs, work: &Path) -> Result<Gathered> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(work.join("files.jsonl"))
            .with_context(|| format!("cannot write in {}", work.display()))?,
    );
    let mut gathered = Gathered::default();
    let mut names = BTreeSet::new();
    let mut roots = BTreeSet::new();
    for path in &args.paths {
        let root = repo_root(path)?;
        if !roots.insert(root.clone()) {
            continue;
        }
        let name = repo_name(&root, &names);
        names.insert(name.clone());
        let listed = git(&root, &["ls-files", "-z", "--cached"])?;
        let tracked: Vec<String> = String::from_utf8_lossy(&listed)
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if tracked.is_empty() {
            bail!(
                "{} has no tracked files (an empty repository): commit some code first",
                root.display()
            );
        }
        let head = git(&root, &["rev-parse", "HEAD"])
            .map(|h| String::from_utf8_lossy(&h).trim().to_owned())
            .unwrap_or_default();
        let recent = recent_files(&root, args.recent_days)?;
        let mut info = RepoInfo {
            name: name.clone(),
            root: root.clone(),
            head,
            tracked_files: tracked.len(),
            recent_files: 0,
        };
        gathered.tracked_files += tracked.len();
        for rel in &tracked {
            let why = read_one(&root, rel, args, &mut gathered, |language, content| {
                let is_recent = recent.contains(rel);
                info.recent_files += usize::from(is_recent);
                let record = FileRecord {
                    repo: &name,
                    path: rel,
                    language,
                    license: "",
                    recent: is_recent,
                    content,
                };
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")?;
                Ok(())
            })?;
            if let Some(why) = why {
                *gathered.dropped.entry(why).or_default() += 1;
            }
        }
        gathered.repos.push(info);
    }
    out.flush()?;
    Ok(gathered)
}

/// Reads one tracked file; `Ok(Some(reason))` when it is dropped, else hands its scrubbed text
/// to `keep`.
fn read_one(
    root: &Path,
    rel: &str,
    args: &BuildArgs,
    gathered: &mut Gathered,
    keep: impl FnOnce(&str, &str) -> Result<()>,
) -> Result<Option<&'static str>> {
    if moat_index::is_secret_file(rel) {
        return Ok(Some("secret_file"));
    }
    let path = root.join(rel);
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        // Tracked but deleted in the work tree.
        return Ok(Some("missing"));
    };
    if !meta.is_file() {
        return Ok(Some("not_a_file"));
    }
    let Some(language) = Language::from_path(&path) else {
        return Ok(Some("not_source"));
    };
    if meta.len() > args.max_file_bytes {
        return Ok(Some("too_large"));
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.contains(&0) {
        return Ok(Some("binary"));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Some("not_utf8"));
    };
    let mut counts = moat_index::SecretCounts::new();
    let scrubbed = moat_index::redact_counted(&text, &mut counts);
    if !counts.is_empty() {
        gathered.files_with_secrets_scrubbed += 1;
        for (kind, n) in counts {
            *gathered.secrets_scrubbed.entry(kind).or_default() += n;
        }
    }
    keep(language.name(), &scrubbed)?;
    Ok(None)
}

/// The model a data set is for: a folder with `model.toml`, an installed model's name, or (none
/// given) the default model.
pub(crate) fn resolve_model(base: Option<&str>) -> Result<PathBuf> {
    let Some(base) = base else {
        return crate::default_model()
            .context("no default model is installed: pass --base NAME (see `moat model list`)");
    };
    let as_path = Path::new(base);
    if as_path.join("model.toml").is_file() {
        return Ok(as_path.to_path_buf());
    }
    if let Some(folder) = moat_model::models_dir().map(|d| d.join(base))
        && folder.join("model.toml").is_file()
    {
        return Ok(folder);
    }
    bail!(
        "no model {base:?}: neither a model folder nor an installed model (see `moat model list`)"
    )
}

/// The temporary sibling of `--out` a build writes into: `.moat-dataset-<pid>-<random>`.
const STAGING_PREFIX: &str = ".moat-dataset-";
/// In the temporary folder: the name of the `--out` folder it is for.
const TARGET_FILE: &str = "target";
/// In the temporary folder: the previous data set, moved aside for the new one.
const REPLACED: &str = "replaced";

/// Cleans up after builds in `parent` whose process is gone (killed mid-way): puts back a data set
/// that was moved aside when its replacement never arrived, then removes the temporary folder.
/// Only where `/proc` tells which processes run (elsewhere nothing is removed).
fn clean_stale(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STAGING_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        if let Ok(target) = std::fs::read_to_string(dir.join(TARGET_FILE)) {
            let out = parent.join(target.trim());
            let old = dir.join(REPLACED);
            if old.is_dir() && !out.exists() && std::fs::rename(&old, &out).is_ok() {
                eprintln!(
                    "moat dataset build: put back {} (a killed build had moved it aside)",
                    out.display()
                );
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::debug!("cannot remove {}: {e}", dir.display());
        }
    }
}

pub fn run(args: &BuildArgs) -> Result<()> {
    let started = std::time::Instant::now();
    if !(0.0..1.0).contains(&args.heldout) {
        bail!("--heldout must be at least 0 and below 1");
    }
    let base = resolve_model(args.base.as_deref())?;
    let pipeline = crate::model_cmd::pipeline_dir().context(
        "model-assets/train/dataset_build.py not found next to or above the moat binary",
    )?;
    let python = crate::model_cmd::python(args.python.as_deref(), &pipeline)?;
    let out = std::path::absolute(&args.out)
        .with_context(|| format!("bad output path {}", args.out.display()))?;
    let parent = out
        .parent()
        .context("the output folder has no parent folder")?
        .to_path_buf();
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    clean_stale(&parent);
    let work = tempfile::Builder::new()
        .prefix(&format!("{STAGING_PREFIX}{}-", std::process::id()))
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a temporary folder in {}", parent.display()))?;
    let target = out
        .file_name()
        .context("the output folder has no name")?
        .to_string_lossy()
        .into_owned();
    std::fs::write(work.path().join(TARGET_FILE), &target)?;
    let mut gathered = gather(args, work.path())?;
    if let Some(feedback) = &args.feedback {
        gather_feedback(feedback, work.path(), &mut gathered)?;
    }
    std::fs::write(
        work.path().join("gathered.json"),
        serde_json::to_vec_pretty(&gathered)?,
    )?;
    let staged = work.path().join("dataset");
    let mut cmd = Command::new(&python);
    cmd.arg(pipeline.join("dataset_build.py"))
        .arg("--files")
        .arg(work.path().join("files.jsonl"))
        .arg("--gathered")
        .arg(work.path().join("gathered.json"))
        .arg("--base")
        .arg(&base)
        .arg("--out")
        .arg(&staged)
        .arg("--heldout")
        .arg(args.heldout.to_string())
        .arg("--recent-weight")
        .arg(args.recent_weight.to_string())
        .arg("--seq-len")
        .arg(args.seq_len.to_string())
        .arg("--seed")
        .arg(args.seed.to_string());
    if gathered.feedback_samples > 0 {
        cmd.arg("--feedback")
            .arg(work.path().join("feedback.jsonl"));
    }
    let status = cmd
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!(
            "the data set pipeline failed (exit status {}); nothing was written to {}",
            status.code().unwrap_or(-1),
            out.display()
        );
    }
    // Swap the finished data set in: the old one (if any) is removed only once the new one is
    // in place.
    let old = work.path().join(REPLACED);
    if out.exists() {
        std::fs::rename(&out, &old)
            .with_context(|| format!("cannot move the old {} aside", out.display()))?;
    }
    std::fs::rename(&staged, &out)
        .with_context(|| format!("cannot move the data set to {}", out.display()))?;
    eprintln!(
        "moat dataset build: {} ready in {:.1} s (report: {})",
        out.display(),
        started.elapsed().as_secs_f64(),
        out.join("report.json").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_builds_folder_is_removed_and_the_data_set_it_moved_aside_put_back() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let parent = tempfile::tempdir().unwrap();
        // A build killed between its two final renames (no process has this id: pids stay
        // below 2^22 on Linux).
        let dead = parent.path().join(format!("{STAGING_PREFIX}999999999-abc"));
        std::fs::create_dir_all(dead.join(REPLACED)).unwrap();
        std::fs::write(dead.join(REPLACED).join("report.json"), "{}").unwrap();
        std::fs::write(dead.join(TARGET_FILE), "data").unwrap();
        // A build still running (this process): left alone.
        let live = parent
            .path()
            .join(format!("{STAGING_PREFIX}{}-def", std::process::id()));
        std::fs::create_dir_all(&live).unwrap();

        clean_stale(parent.path());
        assert!(!dead.exists());
        assert!(live.exists());
        let back = parent.path().join("data").join("report.json");
        assert_eq!(std::fs::read_to_string(back).unwrap(), "{}");
    }
}
