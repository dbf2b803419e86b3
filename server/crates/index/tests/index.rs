//! End-to-end tests of the index on fixture workspaces built in temporary directories.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_index::{
    Error, FileStatus, Index, IndexConfig, Query, RetrievedSnippet, SkipReason, SnippetKind,
};
use tempfile::TempDir;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const MATH_UTILS: &str = r#"import math


def add_numbers(a, b):
    """Add two numbers and return the sum."""
    total = a + b
    return total


def multiply_numbers(a, b):
    """Multiply two numbers."""
    return a * b


class Accumulator:
    """Keeps a running total."""

    def push(self, value):
        self.total = add_numbers(self.total, value)
"#;

const MAIN_PY: &str = r#"from utils.math_utils import add_numbers, Accumulator


def main():
    acc = Accumulator()
    print(acc)
"#;

const GEOMETRY_RS: &str = r#"use std::f64::consts::PI;

/// Area of a circle of radius `r`.
pub fn circle_area(r: f64) -> f64 {
    PI * r * r
}

/// A rectangle.
pub struct Rectangle {
    pub width: f64,
    pub height: f64,
}

impl Rectangle {
    /// Its area.
    pub fn area(&self) -> f64 {
        self.width * self.height
    }
}
"#;

const API_TS: &str = r#"import { Http } from "./http";

export interface User {
  id: string;
  name: string;
}

/** Fetches one user by id. */
export async function fetchUser(http: Http, id: string): Promise<User> {
  const response = await http.get(`/users/${id}`);
  return response.json() as User;
}
"#;

/// A small multi-language workspace.
fn fixture() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "utils/math_utils.py", MATH_UTILS);
    write(root, "app/main.py", MAIN_PY);
    write(root, "src/geometry.rs", GEOMETRY_RS);
    write(root, "web/api.ts", API_TS);
    write(root, "README.md", "# Fixture\n\nA workspace for tests.\n");
    write(root, ".gitignore", "build/\n");
    write(
        root,
        "build/generated.py",
        "def generated_helper():\n    pass\n",
    );
    dir
}

fn open(root: &Path) -> (Index, TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let index = Index::open(root, cache.path(), IndexConfig::default()).unwrap();
    (index, cache)
}

fn refresh(index: &Index) -> moat_index::RefreshReport {
    index.refresh(&mut |_| {}).unwrap()
}

fn query<'a>(path: &'a str, before: &'a str) -> Query<'a> {
    Query {
        path,
        text_before_cursor: before,
        budget_bytes: 4096,
        ..Query::default()
    }
}

fn definitions(snippets: &[RetrievedSnippet]) -> Vec<&RetrievedSnippet> {
    snippets
        .iter()
        .filter(|s| s.kind == SnippetKind::Definition)
        .collect()
}

#[test]
fn retrieval_finds_a_definition_from_another_file() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    let report = refresh(&index);
    assert_eq!(report.indexed, 5, "{report:?}");
    assert_eq!(report.skipped.total(), 0, "{report:?}");

    let before = format!("{MAIN_PY}\n\ndef report(x, y):\n    result = add_numbers(x, ");
    let snippets = index.retrieve(&query("app/main.py", &before));
    let defs = definitions(&snippets);
    let def = defs
        .iter()
        .find(|s| s.path == "utils/math_utils.py")
        .unwrap_or_else(|| panic!("no definition from math_utils: {snippets:#?}"));
    assert!(def.text.contains("def add_numbers(a, b):"), "{}", def.text);
    assert!(
        def.text.contains("Add two numbers and return the sum."),
        "{}",
        def.text
    );
    assert!(
        !def.text.contains("total = a + b"),
        "bodies are not definitions: {}",
        def.text
    );
    // The most useful snippet ends nearest the cursor.
    assert_eq!(snippets.last().unwrap().kind, SnippetKind::Definition);
    assert_eq!(snippets.last().unwrap().path, "utils/math_utils.py");
    // The current file itself is never returned.
    assert!(
        snippets.iter().all(|s| s.path != "app/main.py"),
        "{snippets:#?}"
    );
    // Deterministic.
    assert_eq!(snippets, index.retrieve(&query("app/main.py", &before)));

    // A partially typed name is completed against definition names.
    let snippets = index.retrieve(&query("app/other.py", "x = 1\ny = multiply_num"));
    assert!(
        definitions(&snippets)
            .iter()
            .any(|s| s.text.contains("def multiply_numbers(a, b):")),
        "{snippets:#?}"
    );

    // Identifiers given by the caller, across languages, with doc comments.
    let idents = vec!["circle_area".to_owned(), "fetchUser".to_owned()];
    let snippets = index.retrieve(&Query {
        identifiers_near_cursor: &idents,
        ..query("app/x.py", "")
    });
    let texts: Vec<&str> = snippets.iter().map(|s| s.text.as_str()).collect();
    assert!(
        texts.iter().any(|t| t
            .contains("/// Area of a circle of radius `r`.\npub fn circle_area(r: f64) -> f64")),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("/** Fetches one user by id. */")
                && t.contains("fetchUser(http: Http, id: string): Promise<User>")),
        "{texts:#?}"
    );
    // Most important identifier last.
    assert_eq!(snippets.last().unwrap().path, "src/geometry.rs");

    // Ignored files are not indexed.
    assert!(index.workspace_symbols("generated_helper", 10).is_empty());
}

#[test]
fn similar_code_and_budget() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    refresh(&index);
    let before = "def other(self):\n    self.width * self.height\n    rectangle_area = ";
    let snippets = index.retrieve(&query("lib/shapes.py", before));
    let similar: Vec<_> = snippets
        .iter()
        .filter(|s| s.kind == SnippetKind::Similar)
        .collect();
    assert!(!similar.is_empty(), "{snippets:#?}");
    assert_eq!(similar.last().unwrap().path, "src/geometry.rs");
    // Least useful first within a kind.
    assert!(similar.windows(2).all(|w| w[0].score <= w[1].score));

    // The budget is respected.
    for budget in [0, 50, 200, 600] {
        let snippets = index.retrieve(&Query {
            budget_bytes: budget,
            ..query("lib/shapes.py", before)
        });
        let used: usize = snippets
            .iter()
            .map(|s| s.text.len() + s.path.len() + moat_index::SNIPPET_OVERHEAD_BYTES)
            .sum();
        assert!(used <= budget, "budget {budget}: {snippets:#?}");
    }

    // An open document newer than the index is searched from its text, and boosted.
    let open = vec![(
        "web/api.ts".to_owned(),
        format!(
            "{API_TS}\nexport function rectangleAreaTotal(width: number, height: number) {{\n  return width * height;\n}}\n"
        ),
    )];
    let snippets = index.retrieve(&Query {
        open_files: &open,
        ..query("lib/shapes.py", before)
    });
    assert!(
        snippets
            .iter()
            .any(|s| s.kind == SnippetKind::Similar && s.text.contains("rectangleAreaTotal")),
        "{snippets:#?}"
    );
}

#[test]
fn types_come_with_their_members() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    refresh(&index);
    // A value of a type from another file: its fields and methods, not only its name.
    let before = "fn scale(r: Rectangle) -> f64 {\n    let shape: Rectangle = r;\n";
    let snippets = index.retrieve(&query("src/scale.rs", before));
    let outline = definitions(&snippets)
        .into_iter()
        .find(|s| s.text.contains("pub struct Rectangle {"))
        .unwrap_or_else(|| panic!("no Rectangle: {snippets:#?}"));
    assert!(
        outline
            .text
            .starts_with("/// A rectangle.\npub struct Rectangle {\n    pub width: f64,"),
        "{}",
        outline.text
    );
    let before = "from utils.math_utils import Accumulator\n\nacc = Accumulator()\n";
    let snippets = index.retrieve(&query("app/run.py", before));
    let outline = definitions(&snippets)
        .into_iter()
        .find(|s| s.text.contains("class Accumulator:"))
        .unwrap_or_else(|| panic!("no Accumulator: {snippets:#?}"));
    assert!(
        outline.text.contains("    def push(self, value):"),
        "{}",
        outline.text
    );
    // A function stays a signature.
    assert!(
        snippets.iter().all(|s| !s.text.contains("total = a + b")),
        "{snippets:#?}"
    );
}

#[test]
fn similar_code_the_file_already_holds_is_not_repeated() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    refresh(&index);
    // The current file is a copy of geometry.rs being edited: its twin's chunks add nothing.
    let before = format!("{GEOMETRY_RS}\nfn perimeter(r: &Rectangle) -> f64 {{\n    ");
    let snippets = index.retrieve(&query("src/geometry_copy.rs", &before));
    assert!(
        snippets
            .iter()
            .all(|s| s.kind != SnippetKind::Similar || !s.text.contains("impl Rectangle {")),
        "{snippets:#?}"
    );
}

#[test]
fn far_imports_are_returned_last() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    refresh(&index);
    let filler = "x = 1\n".repeat(600);
    let before =
        format!("import os\nfrom utils.math_utils import add_numbers\n{filler}y = add_numbers(");
    let snippets = index.retrieve(&query("app/long.py", &before));
    let last = snippets.last().unwrap();
    assert_eq!(last.kind, SnippetKind::Import);
    assert_eq!(
        last.text,
        "import os\nfrom utils.math_utils import add_numbers"
    );
}

#[test]
fn persistence_round_trip() {
    let ws = fixture();
    let cache = tempfile::tempdir().unwrap();
    let before = "acc = Accumulator()\ntotal = add_numbers(1, ";
    let (first, symbols, stats) = {
        let index = Index::open(ws.path(), cache.path(), IndexConfig::default()).unwrap();
        refresh(&index);
        (
            index.retrieve(&query("app/main.py", before)),
            index.workspace_symbols("area", 10),
            index.stats(),
        )
    };
    assert!(!first.is_empty());
    assert_eq!(
        symbols.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["area", "circle_area"]
    );
    let started = Instant::now();
    let index = Index::open(ws.path(), cache.path(), IndexConfig::default()).unwrap();
    let opened_in = started.elapsed();
    assert!(opened_in < Duration::from_secs(1), "{opened_in:?}");
    // Searchable at once, before any refresh.
    assert_eq!(index.retrieve(&query("app/main.py", before)), first);
    assert_eq!(index.workspace_symbols("area", 10), symbols);
    let reopened = index.stats();
    assert_eq!(
        (reopened.files, reopened.chunks, reopened.definitions),
        (stats.files, stats.chunks, stats.definitions)
    );
    // Nothing to reindex.
    let report = refresh(&index);
    assert_eq!((report.indexed, report.unchanged), (0, 5), "{report:?}");
    assert_eq!(index.retrieve(&query("app/main.py", before)), first);

    // A touched file with the same content is not reindexed either.
    let path = ws.path().join("web/api.ts");
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let report = refresh(&index);
    assert_eq!((report.indexed, report.unchanged), (0, 5), "{report:?}");
}

#[test]
fn deleted_and_renamed_files() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    refresh(&index);
    std::fs::remove_file(ws.path().join("utils/math_utils.py")).unwrap();
    std::fs::rename(
        ws.path().join("src/geometry.rs"),
        ws.path().join("src/shapes.rs"),
    )
    .unwrap();
    let report = refresh(&index);
    assert_eq!((report.indexed, report.removed), (1, 2), "{report:?}");
    let snippets = index.retrieve(&query("app/main.py", "total = add_numbers(1, "));
    assert!(
        snippets.iter().all(|s| !s.text.contains("def add_numbers")),
        "{snippets:#?}"
    );
    let symbols = index.workspace_symbols("circle_area", 10);
    assert_eq!(symbols.len(), 1);
    assert_eq!(symbols[0].path, "src/shapes.rs");
    assert_eq!(symbols[0].line, 3);
    assert!(index.workspace_symbols("multiply_numbers", 10).is_empty());
    assert_eq!(index.stats().files, 4);
}

#[test]
fn update_and_remove_single_files() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    refresh(&index);
    write(
        ws.path(),
        "utils/math_utils.py",
        "def subtract_numbers(a, b):\n    \"\"\"Subtract.\"\"\"\n    return a - b\n",
    );
    let started = Instant::now();
    let status = index
        .update_file(&ws.path().join("utils/math_utils.py"))
        .unwrap();
    let took = started.elapsed();
    assert_eq!(status, FileStatus::Indexed);
    eprintln!("update_file took {took:?}");
    assert!(index.workspace_symbols("add_numbers", 10).is_empty());
    assert_eq!(index.workspace_symbols("subtract_numbers", 10).len(), 1);
    // Relative paths work too; unchanged content is detected.
    assert_eq!(
        index.update_file(Path::new("utils/math_utils.py")).unwrap(),
        FileStatus::Unchanged
    );
    // A new file.
    write(ws.path(), "lib/new.py", "def brand_new():\n    pass\n");
    assert_eq!(
        index.update_file(Path::new("lib/new.py")).unwrap(),
        FileStatus::Indexed
    );
    assert_eq!(index.workspace_symbols("brand_new", 10).len(), 1);
    // Gone from disk.
    std::fs::remove_file(ws.path().join("lib/new.py")).unwrap();
    assert_eq!(
        index.update_file(Path::new("lib/new.py")).unwrap(),
        FileStatus::Removed
    );
    assert!(index.workspace_symbols("brand_new", 10).is_empty());
    // Explicit removal.
    assert!(index.remove_file(Path::new("src/geometry.rs")).unwrap());
    assert!(!index.remove_file(Path::new("src/geometry.rs")).unwrap());
    assert!(index.workspace_symbols("circle_area", 10).is_empty());
    // Outside the root.
    assert!(matches!(
        index.update_file(Path::new("../elsewhere.py")),
        Err(Error::OutsideRoot(_))
    ));
    assert!(matches!(
        index.update_file(Path::new("/definitely/elsewhere.py")),
        Err(Error::OutsideRoot(_))
    ));
    // A file that became secret-looking by name is dropped.
    write(ws.path(), ".env.local", "API_KEY=abcdefgh12345\n");
    assert_eq!(
        index.update_file(Path::new(".env.local")).unwrap(),
        FileStatus::Skipped(SkipReason::Secret)
    );
}

#[test]
fn binary_and_huge_files_are_skipped() {
    let ws = fixture();
    let mut binary = b"def looks_like_code():\n    pass\n".to_vec();
    binary.extend([0u8, 1, 2, 3, 255]);
    std::fs::write(ws.path().join("data.py"), &binary).unwrap();
    // 50 MB, sparse: reading it would show NUL bytes (binary); the size check must come first.
    let huge = std::fs::File::create(ws.path().join("huge.py")).unwrap();
    huge.set_len(50 * 1024 * 1024).unwrap();
    drop(huge);
    write(
        ws.path(),
        "bundle.js",
        &format!("var a={};\n", "x".repeat(20_000)),
    );
    let (index, _cache) = open(ws.path());
    let started = Instant::now();
    let report = refresh(&index);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(report.skipped.binary, 1, "{report:?}");
    assert_eq!(report.skipped.too_large, 1, "{report:?}");
    assert_eq!(report.skipped.minified, 1, "{report:?}");
    assert_eq!(report.indexed, 5, "{report:?}");
    assert!(index.workspace_symbols("looks_like_code", 10).is_empty());
    assert_eq!(index.workspace_symbols("add_numbers", 10).len(), 1);
    // Unchanged skipped files are not re-read, and still reported.
    let report = refresh(&index);
    assert_eq!(report.skipped.binary, 1, "{report:?}");
    assert_eq!(report.indexed, 0, "{report:?}");
    assert_eq!(
        index.update_file(Path::new("huge.py")).unwrap(),
        FileStatus::Skipped(SkipReason::TooLarge)
    );
}

#[cfg(unix)]
#[test]
fn symlink_loops_fifos_and_dangling_links() {
    use std::os::unix::fs::symlink;
    let ws = fixture();
    let root = ws.path();
    symlink(root, root.join("utils/loop")).unwrap();
    symlink("..", root.join("src/up")).unwrap();
    symlink("nowhere.py", root.join("dangling.py")).unwrap();
    symlink("utils/math_utils.py", root.join("alias.py")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("pipe.py"))
        .status()
        .unwrap();
    assert!(status.success());

    let (index, _cache) = open(root);
    let report = refresh(&index);
    assert_eq!(report.skipped.unreadable, 1, "{report:?}");
    assert_eq!(report.skipped.special, 3, "{report:?}");
    // The five fixture files, plus the file symlink.
    assert_eq!(report.indexed, 6, "{report:?}");
    let paths: Vec<String> = index
        .workspace_symbols("add_numbers", 10)
        .into_iter()
        .map(|s| s.path)
        .collect();
    assert_eq!(paths, ["alias.py", "utils/math_utils.py"]);
    // Single-file updates do not block on a FIFO either.
    assert_eq!(
        index.update_file(Path::new("pipe.py")).unwrap(),
        FileStatus::Skipped(SkipReason::Special)
    );
    assert_eq!(
        index.update_file(Path::new("dangling.py")).unwrap(),
        FileStatus::Skipped(SkipReason::Unreadable)
    );
}

#[test]
fn moat_toml_include_and_exclude() {
    let ws = fixture();
    write(
        ws.path(),
        ".moat.toml",
        "[index]\nexclude = [\"web/\"]\ninclude = [\"**/*.py\", \"**/*.ts\"]\n",
    );
    let config = IndexConfig::load(ws.path()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let index = Index::open(ws.path(), cache.path(), config).unwrap();
    let report = refresh(&index);
    assert_eq!(report.indexed, 2, "{report:?}");
    assert!(index.workspace_symbols("fetchUser", 10).is_empty());
    assert!(index.workspace_symbols("circle_area", 10).is_empty());
    assert_eq!(index.workspace_symbols("add_numbers", 10).len(), 1);
}

#[test]
fn workspace_symbols_rank_and_limit() {
    let ws = fixture();
    let (index, _cache) = open(ws.path());
    refresh(&index);
    let symbols = index.workspace_symbols("num", 10);
    let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["add_numbers", "multiply_numbers"]);
    let rect = &index.workspace_symbols("Rectangle", 1)[0];
    assert_eq!(
        (rect.kind.as_str(), rect.path.as_str(), rect.line),
        ("class", "src/geometry.rs", 8)
    );
    let push = &index.workspace_symbols("push", 1)[0];
    assert_eq!(push.container.as_deref(), Some("Accumulator"));
    assert_eq!(push.signature, "def push(self, value):");
    // Subsequence matches come last; an empty query lists everything (up to the limit).
    assert_eq!(
        index.workspace_symbols("mltnm", 5)[0].name,
        "multiply_numbers"
    );
    assert_eq!(index.workspace_symbols("", 3).len(), 3);
    assert!(index.workspace_symbols("zzzz", 5).is_empty());
}

#[test]
fn searchable_during_refresh_and_read_only_second_handle() {
    let ws = fixture();
    for i in 0..300 {
        write(
            ws.path(),
            &format!("gen/module_{i}.py"),
            &format!("def generated_function_{i}(value):\n    return add_numbers(value, {i})\n"),
        );
    }
    let cache = tempfile::tempdir().unwrap();
    let index = Arc::new(Index::open(ws.path(), cache.path(), IndexConfig::default()).unwrap());
    let searcher = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            let mut searches = 0;
            while !index.stats().refreshing && searches < 1000 {
                std::thread::yield_now();
                searches += 1;
            }
            let mut during = 0;
            while index.stats().refreshing {
                let _ = index.retrieve(&query("app/main.py", "total = add_numbers(1, "));
                let _ = index.workspace_symbols("generated", 5);
                during += 1;
            }
            during
        })
    };
    let mut reports = Vec::new();
    let report = index.refresh(&mut |p| reports.push(p)).unwrap();
    assert_eq!(report.indexed, 305);
    assert_eq!(reports.first().unwrap().phase, moat_index::Phase::Scanning);
    let last = reports.last().unwrap();
    assert_eq!(
        (last.phase, last.done, last.total),
        (moat_index::Phase::Done, 305, 305)
    );
    let searches_during = searcher.join().unwrap();
    eprintln!("{searches_during} searches ran during the refresh");

    let second = Index::open(ws.path(), cache.path(), IndexConfig::default()).unwrap();
    assert!(second.stats().read_only);
    assert!(matches!(
        second.refresh(&mut |_| {}),
        Err(Error::ReadOnly(_))
    ));
    assert_eq!(second.workspace_symbols("generated_function_7", 1).len(), 1);
}

/// Secrets planted in a workspace: none may appear in any snippet or symbol.
#[test]
fn planted_secrets_never_reach_snippets_or_symbols() {
    const AWS: &str = "AKIAIOSFODNN7EXAMPLE";
    const GITHUB: &str = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnly12345";
    const PASSWORD: &str = "hunter2-Sup3rS3cret!";
    const KEY_BODY: &str = "MIIEowIBAAKCAQEAxq3Xa9LkLpPlantedKeyBody0000";
    const ENV_KEY: &str = "sk-live-0123456789abcdefPLANTED";
    const SLACK: &str = "xoxb-2048-planted-slack-token";
    const SLACK_FRAGMENT: &str = "planted-slack";
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlUGxhbnRlZA";
    let secrets = [
        AWS,
        GITHUB,
        PASSWORD,
        KEY_BODY,
        ENV_KEY,
        SLACK,
        SLACK_FRAGMENT,
        JWT,
    ];

    let ws = fixture();
    let root = ws.path();
    write(
        root,
        "config.py",
        &format!(
            "password = \"{PASSWORD}\"\nAWS_ACCESS_KEY_ID = \"{AWS}\"\nSESSION = \"{JWT}\"\n\n\
             def connect_database(host):\n    \"\"\"Connect to the database.\"\"\"\n    \
             return open_connection(host, password=password, key=AWS_ACCESS_KEY_ID)\n"
        ),
    );
    write(
        root,
        "deploy/keys.py",
        &format!(
            "GITHUB_TOKEN = \"{GITHUB}\"\nPRIVATE_KEY = \"\"\"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n\
             {KEY_BODY}\n-----END RSA PRIVATE KEY-----\"\"\"\n\n\
             def sign_request(request):\n    return sign(request, PRIVATE_KEY, GITHUB_TOKEN)\n"
        ),
    );
    write(
        root,
        "web/settings.ts",
        &format!(
            "export const slackToken = \"{SLACK}\";\nexport function loadSettings() {{\n  return {{ slackToken }};\n}}\n"
        ),
    );
    write(
        root,
        ".env",
        &format!("API_KEY={ENV_KEY}\nDB_PASSWORD={PASSWORD}\n"),
    );
    // `.env` is hidden, so never walked; these non-hidden files test the secret-file globs
    // and, with those off, redaction.
    write(
        root,
        "deploy/service.ini",
        &format!("[auth]\nAPI_KEY={ENV_KEY}\nDB_PASSWORD={PASSWORD}\n"),
    );
    write(
        root,
        "credentials.json",
        &format!(
            "{{\"client_id\": \"moat\", \"client_secret\": \"{ENV_KEY}\", \"token\": \"{GITHUB}\"}}\n"
        ),
    );
    write(
        root,
        "server.pem",
        &format!("-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"),
    );
    // With secret files not skipped, redaction alone must hold.
    for skip_secret_files in [true, false] {
        let cache = tempfile::tempdir().unwrap();
        let config = IndexConfig {
            skip_secret_files,
            ..IndexConfig::default()
        };
        let index = Index::open(root, cache.path(), config).unwrap();
        let report = refresh(&index);
        if skip_secret_files {
            assert_eq!(report.skipped.secret, 2, "{report:?}");
        }
        let idents: Vec<String> = [
            "password",
            "AWS_ACCESS_KEY_ID",
            "SESSION",
            "GITHUB_TOKEN",
            "PRIVATE_KEY",
            "API_KEY",
            "DB_PASSWORD",
            "slackToken",
            "connect_database",
            "sign_request",
            "loadSettings",
        ]
        .map(String::from)
        .to_vec();
        let before = "client_secret = client_id\nkey = PRIVATE_KEY\ntoken = GITHUB_TOKEN\npassword = password\n\
                      aws = AWS_ACCESS_KEY_ID\nslack = slackToken\napi = API_KEY\nsession = SESSION\n\
                      connect_database(host)\nsign_request(request)\nloadSettings()\nRSA PRIVATE KEY\n";
        let open = vec![(
            "scratch.py".to_owned(),
            format!(
                "password = \"{PASSWORD}\"\ntoken = \"{GITHUB}\"\nkey = GITHUB_TOKEN + PRIVATE_KEY\n"
            ),
        )];
        let mut texts = Vec::new();
        let mut paths = std::collections::BTreeSet::new();
        let befores = [
            before,
            "client = Client(client_id, client_secret, token)\n",
            "# <redacted>\n",
        ];
        for path in [
            "app/main.py",
            "config.py",
            "deploy/keys.py",
            "deploy/service.ini",
        ] {
            for before in befores {
                let snippets = index.retrieve(&Query {
                    path,
                    text_before_cursor: before,
                    identifiers_near_cursor: &idents,
                    open_files: &open,
                    budget_bytes: 1 << 20,
                    deadline: None,
                });
                assert!(!snippets.is_empty());
                paths.extend(snippets.iter().map(|s| s.path.clone()));
                texts.extend(snippets.into_iter().map(|s| s.text));
            }
        }
        for q in ["", "password", "token", "key", "session", "aws", "slack"] {
            texts.extend(
                index
                    .workspace_symbols(q, 1000)
                    .into_iter()
                    .map(|s| s.signature),
            );
        }
        // Every secret-bearing file that is indexed was retrieved from.
        let mut expected = vec![
            "config.py",
            "deploy/keys.py",
            "deploy/service.ini",
            "scratch.py",
            "web/settings.ts",
        ];
        if !skip_secret_files {
            expected.extend(["credentials.json", "server.pem"]);
        }
        for path in expected {
            assert!(paths.contains(path), "{path} not retrieved: {paths:?}");
        }
        let all = texts.join("\n");
        assert!(all.contains("connect_database"), "{all}");
        assert!(all.contains("<redacted>"), "{all}");
        for secret in secrets {
            assert!(
                !all.contains(secret),
                "{secret} leaked (skip_secret_files = {skip_secret_files}):\n{all}"
            );
        }
    }
}

#[test]
fn damaged_or_foreign_stores_are_rebuilt() {
    let ws = fixture();
    let cache = tempfile::tempdir().unwrap();
    let open = || Index::open(ws.path(), cache.path(), IndexConfig::default()).unwrap();
    refresh(&open());

    // Flip bytes in every segment file: checksums fail on open, the store is rebuilt.
    for entry in std::fs::read_dir(cache.path().join("tantivy")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.ends_with(".store") || name.ends_with(".idx") {
            let mut bytes = std::fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let index = open();
    assert_eq!(index.stats().files, 0);
    assert!(index.workspace_symbols("add_numbers", 10).is_empty());
    assert_eq!(refresh(&index).indexed, 5);
    assert_eq!(index.workspace_symbols("add_numbers", 10).len(), 1);
    drop(index);

    // An unreadable manifest: rebuilt too.
    std::fs::write(cache.path().join("manifest.json"), "{not json").unwrap();
    let index = open();
    assert_eq!(index.stats().files, 0);
    assert_eq!(refresh(&index).indexed, 5);
}

#[test]
fn recently_edited_files_rank_between_open_files_and_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let body = |name: &str| {
        format!(
            "def {name}(invoice_lines, tax_rate):\n    subtotal = sum(line.amount for line in invoice_lines)\n    return subtotal * (1 + tax_rate)\n"
        )
    };
    write(root, "billing/a_old.py", &body("total_a"));
    write(root, "billing/b_old.py", &body("total_b"));
    write(root, "billing/c_edited.py", &body("total_c"));
    let (index, _cache) = open(root);
    refresh(&index);
    let before = "def invoice_total(invoice_lines, tax_rate):\n    subtotal = sum(line.amount for line in invoice_lines)\n";
    let best = |index: &Index, open: &[(String, String)]| {
        let snippets = index.retrieve(&Query {
            open_files: open,
            ..query("app/new.py", before)
        });
        let similar: Vec<_> = snippets
            .iter()
            .filter(|s| s.kind == SnippetKind::Similar)
            .collect();
        similar.last().map(|s| s.path.clone()).unwrap_or_default()
    };
    // Equal scores: the order is by path.
    assert_eq!(best(&index, &[]), "billing/a_old.py");

    // A save re-reads the file: it is now recently edited and ranks first.
    write(
        root,
        "billing/c_edited.py",
        &format!("{}\n", body("total_c")),
    );
    index
        .update_file(&root.join("billing/c_edited.py"))
        .unwrap();
    assert_eq!(index.recently_edited(), vec!["billing/c_edited.py"]);
    assert_eq!(best(&index, &[]), "billing/c_edited.py");

    // An open document still beats a recently edited one.
    let open = vec![("billing/b_old.py".to_owned(), body("total_b"))];
    assert_eq!(best(&index, &open), "billing/b_old.py");

    // A removed file is forgotten.
    std::fs::remove_file(root.join("billing/c_edited.py")).unwrap();
    index
        .remove_file(&root.join("billing/c_edited.py"))
        .unwrap();
    assert!(index.recently_edited().is_empty());
}
