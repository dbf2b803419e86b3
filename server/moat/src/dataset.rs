//! `moat dataset tasks PATH...`: builds `moat eval` task sets from local source code
//! (`moat dataset build`, the fine-tuning data set, is in [`build`]).
//!
//! Owns: walking local folders for source files, choosing lines to complete, and writing tasks.
//! Must not: read the network or depend on git; the result must be the same for the same files,
//! options and seed.
//!
//! A task removes the text of one line after its indentation and puts the cursor there, where an
//! editor leaves it after Enter (so the pipeline sees a fresh line, as it would while typing);
//! `expected` is the removed text. Lines are picked per file by kind:
//! - `random`: any line with code on it;
//! - `after-def`: the first code line after a definition's signature (a function body's start);
//! - `cross-file`: a line that uses a name defined in another file of the same repository
//!   (and not in its own file): the case repository context should help with.
//!
//! Each PATH is a repository (a folder) or a file; files given side by side with the same parent
//! folder form one repository. Folders are walked in sorted order, skipping hidden entries and
//! `target`, `node_modules`, `__pycache__`, `build`, `dist`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use moat_syntax::{Language, SyntaxTree};
use serde::Serialize;

mod build;

pub(crate) use build::resolve_model;

#[derive(Subcommand)]
pub enum DatasetCommand {
    /// Make eval tasks (JSON lines for `moat eval`) from local repositories.
    Tasks(TasksArgs),
    /// Build a fine-tuning data set from git repositories: curated, secrets scrubbed, FIM
    /// samples in the base model's format, a held-out split by file, and a report.
    Build(build::BuildArgs),
}

#[derive(Args)]
pub struct TasksArgs {
    /// Repository folders, or source files (files with the same folder form one repository).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Write the tasks here (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Tasks per file (at most).
    #[arg(long, default_value_t = 3)]
    per_file: usize,
    /// Seed for choosing lines; the same seed and files give the same tasks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Kinds of line to pick, in turn.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "random,after-def,cross-file"
    )]
    kinds: Vec<Kind>,
    /// Keep at most this many tasks overall (a seeded sample, in file order).
    #[arg(long)]
    max_tasks: Option<usize>,
    /// Only these languages (moat names: python, rust, javascript, go, ...).
    #[arg(long, value_delimiter = ',')]
    languages: Vec<String>,
    /// Bytes of text kept before the cursor (cut at a line start). The pipeline's default window
    /// is 1024 tokens (~4 KB of code), so the default loses nothing it would use.
    #[arg(long, default_value_t = 6000)]
    max_prefix_bytes: usize,
    /// Bytes of text kept after the line (cut at a line end).
    #[arg(long, default_value_t = 1500)]
    max_suffix_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Random,
    AfterDef,
    CrossFile,
}

/// One task as written (field order is the file's).
#[derive(Debug, Clone, Serialize)]
pub struct TaskOut {
    pub id: String,
    pub language: String,
    pub repo: String,
    pub path: String,
    /// 1-based line number of the completed line.
    pub line: usize,
    pub kind: Kind,
    pub prefix: String,
    pub suffix: String,
    pub expected: String,
}

/// SplitMix64: tiny, seeded, good enough for picking lines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// FNV-1a, to derive a per-file seed from its name (so adding files does not change the others).
fn fnv(seed: u64, text: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const SKIP_DIRS: [&str; 5] = ["target", "node_modules", "__pycache__", "build", "dist"];
const MAX_FILE_BYTES: u64 = 200_000;

/// A source file of a repository, read and parsed.
struct SourceFile {
    rel: String,
    language: Language,
    text: String,
    tree: Option<SyntaxTree>,
}

struct Repo {
    name: String,
    files: Vec<SourceFile>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !SKIP_DIRS.contains(&name) {
                walk(&path, out)?;
            }
        } else if meta.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn is_source_language(l: Language) -> bool {
    !matches!(l, Language::Json | Language::Toml)
}

fn read_source(path: &Path, rel: String, languages: &[String]) -> Option<SourceFile> {
    let language = Language::from_path(path).filter(|l| is_source_language(*l))?;
    if !languages.is_empty() && !languages.iter().any(|l| l == language.name()) {
        return None;
    }
    if std::fs::metadata(path).ok()?.len() > MAX_FILE_BYTES {
        return None;
    }
    let text = String::from_utf8(std::fs::read(path).ok()?).ok()?;
    let lines = text.lines().count();
    if lines < 3 || text.len() / lines > 120 {
        // Too short to have context, or minified / generated data.
        return None;
    }
    let tree = SyntaxTree::parse(language, &text);
    Some(SourceFile {
        rel,
        language,
        text,
        tree,
    })
}

/// Groups the PATH arguments into repositories and reads their source files.
fn load_repos(paths: &[PathBuf], languages: &[String]) -> Result<Vec<Repo>> {
    let mut repos: Vec<Repo> = Vec::new();
    let mut loose: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let name_of = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            let root = path.canonicalize().unwrap_or_else(|_| path.clone());
            let mut files = Vec::new();
            walk(&root, &mut files)?;
            let files = files
                .iter()
                .filter_map(|f| {
                    let rel = f
                        .strip_prefix(&root)
                        .unwrap_or(f)
                        .to_string_lossy()
                        .into_owned();
                    read_source(f, rel, languages)
                })
                .collect();
            repos.push(Repo {
                name: name_of(&root),
                files,
            });
        } else {
            let full = path.canonicalize().unwrap_or_else(|_| path.clone());
            let parent = full.parent().map(Path::to_path_buf).unwrap_or_default();
            loose.entry(parent).or_default().push(full);
        }
    }
    for (parent, mut files) in loose {
        files.sort();
        files.dedup();
        let files = files
            .iter()
            .filter_map(|f| read_source(f, name_of(f), languages))
            .collect();
        repos.push(Repo {
            name: name_of(&parent),
            files,
        });
    }
    Ok(repos)
}

fn identifiers(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
}

/// A line that can be a task: its byte range (without the newline) and where the code starts.
#[derive(Debug, Clone)]
struct Line {
    number: usize,
    range: Range<usize>,
    indent: usize,
}

impl Line {
    fn code<'a>(&self, text: &'a str) -> &'a str {
        text[self.range.start + self.indent..self.range.end].trim_end()
    }
}

fn lines_of(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = 0;
    for (number, raw) in text.split('\n').enumerate() {
        let end = start + raw.len();
        let indent = raw.len() - raw.trim_start().len();
        out.push(Line {
            number: number + 1,
            range: start..end,
            indent,
        });
        start = end + 1;
    }
    out
}

/// Whether a line is worth completing: some code (not a comment, not inside a string or
/// comment), of a sensible length, and not the file's first line.
fn eligible(file: &SourceFile, line: &Line) -> bool {
    let code = line.code(&file.text);
    if line.number < 2 || code.len() < 3 || code.len() > 200 {
        return false;
    }
    if !code.chars().any(char::is_alphanumeric) {
        return false;
    }
    let comment = file.language.line_comment();
    if comment.is_some_and(|c| code.starts_with(c))
        || code.starts_with("/*")
        || code.starts_with("* ")
        || code == "*/"
    {
        return false;
    }
    if let Some(tree) = &file.tree {
        let info = tree.cursor_info(&file.text, line.range.start + line.indent);
        if info.in_comment || info.in_string {
            return false;
        }
    }
    true
}

/// Candidate lines of each kind in one file (line indices into `lines`).
fn candidates(
    file: &SourceFile,
    lines: &[Line],
    foreign_names: &HashSet<&str>,
) -> BTreeMap<Kind, Vec<usize>> {
    let ok: Vec<bool> = lines.iter().map(|l| eligible(file, l)).collect();
    let line_of = |byte: usize| lines.partition_point(|l| l.range.end < byte);
    let mut out: BTreeMap<Kind, Vec<usize>> = BTreeMap::new();
    out.insert(Kind::Random, (0..lines.len()).filter(|&i| ok[i]).collect());

    let definitions = file
        .tree
        .as_ref()
        .map(|t| t.definitions(&file.text))
        .unwrap_or_default();
    let own_names: HashSet<&str> = definitions
        .iter()
        .map(|d| &file.text[d.name_range.clone()])
        .collect();
    let mut def_lines = HashSet::new();
    let mut after = Vec::new();
    for d in &definitions {
        let start = d.range.start;
        def_lines.insert(line_of(start));
        let sig_end = file.text[start..d.range.end]
            .find(d.signature.as_str())
            .map_or(start + 1, |at| start + at + d.signature.len());
        let sig_line = line_of(sig_end.saturating_sub(1).max(start));
        let body_end = line_of(d.range.end);
        if let Some(i) = (sig_line + 1..=body_end.min(lines.len().saturating_sub(1)))
            .find(|&i| !lines[i].code(&file.text).is_empty())
            && ok[i]
        {
            after.push(i);
        }
    }
    after.sort_unstable();
    after.dedup();
    out.insert(Kind::AfterDef, after);

    let cross = (0..lines.len())
        .filter(|&i| ok[i] && !def_lines.contains(&i))
        .filter(|&i| {
            identifiers(lines[i].code(&file.text))
                .any(|w| w.len() >= 3 && foreign_names.contains(w) && !own_names.contains(w))
        })
        .collect();
    out.insert(Kind::CrossFile, cross);
    out
}

/// The task for line `line` of `file`: cursor after the indentation, expected = rest of line.
fn make_task(repo: &str, file: &SourceFile, line: &Line, kind: Kind, args: &TasksArgs) -> TaskOut {
    let text = &file.text;
    let cursor = line.range.start + line.indent;
    let expected = line.code(text).to_string();
    let after = cursor + expected.len();
    let mut from = text.floor_char_boundary(cursor.saturating_sub(args.max_prefix_bytes));
    if from > 0 {
        from = text[from..cursor]
            .find('\n')
            .map_or(cursor, |i| from + i + 1);
        from = from.min(line.range.start);
    }
    let mut to = text.floor_char_boundary((after + args.max_suffix_bytes).min(text.len()));
    if to < text.len() {
        to = text[after..to].rfind('\n').map_or(after, |i| after + i + 1);
    }
    TaskOut {
        id: format!("{repo}/{}:{}", file.rel, line.number),
        language: file.language.name().to_string(),
        repo: repo.to_string(),
        path: file.rel.clone(),
        line: line.number,
        kind,
        prefix: text[from..cursor].to_string(),
        suffix: text[after..to].to_string(),
        expected,
    }
}

/// Builds the tasks for the given repositories (deterministic for the same input and seed).
fn build_tasks(repos: &[Repo], args: &TasksArgs) -> Vec<TaskOut> {
    let mut tasks = Vec::new();
    for repo in repos {
        // Names defined in each file, to find uses of names from other files.
        let mut defined_in: HashMap<&str, HashSet<usize>> = HashMap::new();
        for (fi, file) in repo.files.iter().enumerate() {
            if let Some(tree) = &file.tree {
                for d in tree.definitions(&file.text) {
                    let name = &file.text[d.name_range.clone()];
                    defined_in.entry(name).or_default().insert(fi);
                }
            }
        }
        for (fi, file) in repo.files.iter().enumerate() {
            let foreign: HashSet<&str> = defined_in
                .iter()
                .filter(|(_, files)| files.iter().any(|&f| f != fi))
                .map(|(name, _)| *name)
                .collect();
            let lines = lines_of(&file.text);
            let mut pool = candidates(file, &lines, &foreign);
            let mut rng = Rng(fnv(args.seed, &format!("{}/{}", repo.name, file.rel)));
            let mut chosen: Vec<(usize, Kind)> = Vec::new();
            let mut turn = 0;
            while chosen.len() < args.per_file && !args.kinds.is_empty() {
                // This turn's kind, else the next kind that still has lines.
                let picked = (0..args.kinds.len()).find_map(|k| {
                    let kind = args.kinds[(turn + k) % args.kinds.len()];
                    let list = pool.get_mut(&kind)?;
                    list.retain(|i| !chosen.iter().any(|(c, _)| c == i));
                    if list.is_empty() {
                        return None;
                    }
                    let at = rng.below(list.len());
                    Some((list.swap_remove(at), kind))
                });
                let Some(pick) = picked else { break };
                chosen.push(pick);
                turn += 1;
            }
            chosen.sort_unstable();
            for (i, kind) in chosen {
                tasks.push(make_task(&repo.name, file, &lines[i], kind, args));
            }
        }
    }
    if let Some(max) = args.max_tasks
        && tasks.len() > max
    {
        let mut rng = Rng(fnv(args.seed, "max-tasks"));
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut keep: Vec<usize> = order[..max].to_vec();
        keep.sort_unstable();
        let mut all: Vec<Option<TaskOut>> = tasks.into_iter().map(Some).collect();
        tasks = keep.into_iter().filter_map(|i| all[i].take()).collect();
    }
    tasks
}

pub fn run(command: &DatasetCommand) -> Result<()> {
    let args = match command {
        DatasetCommand::Tasks(args) => args,
        DatasetCommand::Build(args) => return build::run(args),
    };
    let repos = load_repos(&args.paths, &args.languages)?;
    let files: usize = repos.iter().map(|r| r.files.len()).sum();
    if files == 0 {
        bail!("no source files of a supported language found under the given paths");
    }
    let tasks = build_tasks(&repos, args);
    let mut text = String::new();
    for t in &tasks {
        text.push_str(&serde_json::to_string(t)?);
        text.push('\n');
    }
    match &args.out {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for t in &tasks {
        let kind = serde_json::to_value(t.kind)?
            .as_str()
            .unwrap_or("")
            .to_string();
        *by.entry((t.language.clone(), kind)).or_default() += 1;
    }
    let summary: Vec<String> = by
        .iter()
        .map(|((lang, kind), n)| format!("{lang}/{kind} {n}"))
        .collect();
    eprintln!(
        "moat dataset: {} tasks from {files} files in {} repositories ({})",
        tasks.len(),
        repos.len(),
        summary.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kinds: Vec<Kind>, per_file: usize) -> TasksArgs {
        TasksArgs {
            paths: Vec::new(),
            out: None,
            per_file,
            seed: 7,
            kinds,
            max_tasks: None,
            languages: Vec::new(),
            max_prefix_bytes: 6000,
            max_suffix_bytes: 1500,
        }
    }

    fn file(rel: &str, text: &str) -> SourceFile {
        let language = Language::from_path(Path::new(rel)).unwrap();
        SourceFile {
            rel: rel.into(),
            language,
            text: text.into(),
            tree: SyntaxTree::parse(language, text),
        }
    }

    fn repo() -> Vec<Repo> {
        vec![Repo {
            name: "r".into(),
            files: vec![
                file(
                    "util.py",
                    "import os\n\n\ndef helper_path(name):\n    # a comment\n    base = os.getcwd()\n    return os.path.join(base, name)\n",
                ),
                file(
                    "main.py",
                    "import util\n\n\ndef main():\n    \"\"\"Doc.\n    more\"\"\"\n    p = util.helper_path(\"x\")\n    print(p)\n",
                ),
            ],
        }]
    }

    #[test]
    fn tasks_cut_the_line_after_its_indentation() {
        let tasks = build_tasks(&repo(), &args(vec![Kind::CrossFile], 5));
        assert_eq!(tasks.len(), 1, "{tasks:#?}");
        let t = &tasks[0];
        assert_eq!(t.id, "r/main.py:7");
        assert_eq!(t.expected, "p = util.helper_path(\"x\")");
        assert!(t.prefix.ends_with("more\"\"\"\n    "), "{:?}", t.prefix);
        assert_eq!(t.suffix, "\n    print(p)\n");
    }

    #[test]
    fn after_def_takes_the_first_code_line_of_the_body() {
        let tasks = build_tasks(&repo(), &args(vec![Kind::AfterDef], 5));
        let got: Vec<(&str, &str)> = tasks
            .iter()
            .map(|t| (t.path.as_str(), t.expected.as_str()))
            .collect();
        // util.py's body starts with a comment (tree-sitter counts it into the signature, so the
        // first code line after it is taken); main.py's with its docstring, a legitimate line to
        // complete (the cursor is before the quote, not inside the string).
        assert_eq!(
            got,
            vec![("util.py", "base = os.getcwd()"), ("main.py", "\"\"\"Doc.")]
        );
    }

    #[test]
    fn deterministic_for_a_seed_and_never_in_comments_or_strings() {
        let a = build_tasks(&repo(), &args(vec![Kind::Random], 10));
        let b = build_tasks(&repo(), &args(vec![Kind::Random], 10));
        let ids = |t: &[TaskOut]| t.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert!(
            a.iter()
                .all(|t| !t.expected.starts_with('#') && t.expected != "more\"\"\"")
        );
        assert!(a.iter().all(|t| t.line >= 2));
        let mut capped = args(vec![Kind::Random], 10);
        capped.max_tasks = Some(3);
        assert_eq!(build_tasks(&repo(), &capped).len(), 3);
    }
}
