//! Query tests in tree-sitter's style: `grammars/<dir>/test/tags.<ext>` and
//! `grammars/<dir>/test/context.<ext>` are source files with assertion comments under the
//! lines they test:
//!
//! ```text
//! def foo(x):
//! #   ^ definition.function
//! # <- definition.function
//! #      ^ !string
//! ```
//!
//! `^` points at the column above it, `<-` at the column where the comment starts; a name
//! prefixed with `!` asserts the capture is absent there. A `tags` assertion holds when a match
//! has a capture with that name and the match's `@name` node covers the column; a `context`
//! assertion holds when a node captured with that name covers it.
//!
//! Owns: checking the query files against their tests. Must not: be compiled outside tests.

use std::ops::Range;
use std::path::{Path, PathBuf};

use streaming_iterator::StreamingIterator;
use tree_sitter::QueryCursor;

use crate::language::QueryKind;
use crate::{Language, SyntaxTree};

fn grammars_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../grammars");
    dir.canonicalize().unwrap_or(dir)
}

/// One assertion comment.
#[derive(Debug)]
struct Assertion {
    /// 1-based line of the assertion comment, for messages.
    line: usize,
    /// Byte offset in the file of the asserted position.
    byte: usize,
    capture: String,
    negated: bool,
}

/// Parses the assertion comments of a test file; `prefix` is the line-comment prefix.
fn assertions(src: &str, prefix: &str) -> Vec<Assertion> {
    let mut out = Vec::new();
    // Start offset of the last line that is not an assertion.
    let mut source_line: Option<usize> = None;
    let mut offset = 0;
    for (i, line) in src.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        if body.trim().is_empty() {
            continue;
        }
        let indent = body.len() - body.trim_start().len();
        let Some(rest) = body[indent..].strip_prefix(prefix) else {
            source_line = Some(line_start);
            continue;
        };
        let trimmed = rest.trim_start();
        let (column_chars, name) = if let Some(name) = trimmed.strip_prefix('^') {
            let caret = body.find('^').unwrap_or(0);
            (body[..caret].chars().count(), name)
        } else if let Some(name) = trimmed.strip_prefix("<-") {
            (body[..indent].chars().count(), name)
        } else {
            source_line = Some(line_start);
            continue;
        };
        let Some(target) = source_line else {
            panic!("line {}: assertion before any source line", i + 1);
        };
        let target_line = src[target..].split('\n').next().unwrap_or("");
        let column = target_line
            .char_indices()
            .nth(column_chars)
            .map_or(target_line.len(), |(b, _)| b);
        let name = name.trim();
        let (negated, name) = match name.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, name),
        };
        out.push(Assertion {
            line: i + 1,
            byte: target + column,
            capture: name.to_owned(),
            negated,
        });
    }
    out
}

/// (capture name, range it covers) for every capture of `kind`'s query over the file. For
/// tags, a `definition.*` capture covers its match's `@name` node, and where several patterns
/// define the same name node only the first pattern counts, as in `SyntaxTree::definitions`.
fn captured(tree: &SyntaxTree, src: &str, kind: QueryKind) -> Vec<(String, Range<usize>)> {
    let query = tree.language().query(kind).as_ref().unwrap();
    let names = query.capture_names();
    let name_index = query.capture_index_for_name("name");
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, tree.tree().root_node(), src.as_bytes());
    // (pattern index, capture name, covered range)
    let mut out: Vec<(usize, String, Range<usize>)> = Vec::new();
    while let Some(m) = matches.next() {
        let name_node = m
            .captures()
            .iter()
            .find(|c| Some(c.index) == name_index)
            .map(|c| c.node);
        for c in m.captures() {
            if Some(c.index) == name_index {
                continue;
            }
            let node = match kind {
                QueryKind::Tags => name_node.unwrap_or(c.node),
                QueryKind::Context => c.node,
            };
            let name = names[c.index as usize].to_owned();
            out.push((m.pattern_index, name, node.byte_range()));
        }
    }
    let first_pattern = |range: &Range<usize>| {
        out.iter()
            .filter(|(_, n, r)| n.starts_with("definition.") && r == range)
            .map(|(p, _, _)| *p)
            .min()
    };
    out.iter()
        .filter(|(p, n, r)| !n.starts_with("definition.") || first_pattern(r) == Some(*p))
        .map(|(_, n, r)| (n.clone(), r.clone()))
        .collect()
}

/// Runs one test file; returns its failures and how many assertions it had.
fn run_file(path: &Path, dir: &str) -> (Vec<String>, usize) {
    let file = path.display();
    let lang = Language::from_path(path).unwrap_or_else(|| panic!("{file}: unknown language"));
    assert_eq!(
        lang.query_dir(),
        dir,
        "{file}: belongs under grammars/{}/",
        lang.query_dir()
    );
    let kind = match path.file_stem().and_then(|s| s.to_str()) {
        Some("tags") => QueryKind::Tags,
        Some("context") => QueryKind::Context,
        _ => panic!("{file}: test files are named tags.<ext> or context.<ext>"),
    };
    let src = std::fs::read_to_string(path).unwrap();
    check_source(lang, kind, &src, &file.to_string())
}

/// Checks the assertions in `src`; returns its failures and how many assertions it had.
fn check_source(lang: Language, kind: QueryKind, src: &str, file: &str) -> (Vec<String>, usize) {
    let tree = SyntaxTree::parse(lang, src).unwrap();
    let mut failures = Vec::new();
    if tree.tree().root_node().has_error() {
        failures.push(format!("{file}: parses with errors: {}", tree.to_sexp()));
    }
    let captures = captured(&tree, src, kind);
    let asserts = assertions(src, lang.line_comment().unwrap_or("//"));
    for a in &asserts {
        let hit = captures
            .iter()
            .any(|(name, range)| *name == a.capture && range.start <= a.byte && a.byte < range.end);
        if hit == a.negated {
            let here: Vec<_> = captures
                .iter()
                .filter(|(_, r)| r.start <= a.byte && a.byte < r.end)
                .map(|(n, r)| format!("{n} {r:?}"))
                .collect();
            let line_start = src[..a.byte].rfind('\n').map_or(0, |i| i + 1);
            let line = src[line_start..].lines().next().unwrap_or("");
            let column = src[line_start..a.byte].chars().count();
            failures.push(format!(
                "{file}:{}: expected {}{} at byte {}; captured there: {here:?}\n    {line}\n    {:column$}^",
                a.line,
                if a.negated { "no " } else { "" },
                a.capture,
                a.byte,
                "",
            ));
        }
    }
    (failures, asserts.len())
}

#[test]
fn query_files_pass_their_tests() {
    let mut failures = Vec::new();
    let mut files = 0;
    for &lang in Language::all() {
        let dir = lang.query_dir();
        let test_dir = grammars_dir().join(dir).join("test");
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&test_dir)
            .unwrap_or_else(|e| panic!("{}: {e}", test_dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| Language::from_path(p) == Some(lang))
            .collect();
        entries.sort();
        let has = |stem: &str| {
            entries
                .iter()
                .any(|p| p.file_stem().and_then(|s| s.to_str()) == Some(stem))
        };
        let has_tags = lang
            .query(QueryKind::Tags)
            .as_ref()
            .unwrap()
            .pattern_count()
            > 0;
        if has_tags && !has("tags") && lang != Language::Tsx {
            failures.push(format!("{}: no test/tags.* for {lang}", test_dir.display()));
        }
        if !has("context") {
            failures.push(format!(
                "{}: no test/context.* for {lang}",
                test_dir.display()
            ));
        }
        for path in entries {
            let (fails, count) = run_file(&path, dir);
            if count == 0 {
                failures.push(format!("{}: no assertions", path.display()));
            }
            failures.extend(fails);
            files += 1;
        }
    }
    assert!(files > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn assertion_comments_parse() {
    let src = "def foo(x):\n#   ^ definition.function\n# <- !string\nx = '日本'\n#      ^ string\n";
    let a = assertions(src, "#");
    assert_eq!(a.len(), 3);
    assert_eq!(
        (a[0].byte, a[0].capture.as_str(), a[0].negated),
        (4, "definition.function", false)
    );
    assert_eq!((a[1].byte, a[1].negated), (0, true));
    // The caret is at char 7 of its line: `'日本'` starts at char 4, so char 7 is the closing
    // quote, byte 4 + 1 + 3 + 3 = 11 of that line.
    let line = src.find("x = ").unwrap();
    assert_eq!(a[2].byte, line + 11);
}

#[test]
fn wrong_assertions_fail() {
    let src = "def foo(x):\n#   ^ definition.function\n#   ^ !definition.class\n";
    assert_eq!(
        check_source(Language::Python, QueryKind::Tags, src, "ok"),
        (vec![], 2)
    );
    let wrong =
        "def foo(x):\n#   ^ definition.class\n#   ^ !definition.function\n#^ definition.function\n";
    let (failures, count) = check_source(Language::Python, QueryKind::Tags, wrong, "wrong");
    assert_eq!((failures.len(), count), (3, 3), "{failures:#?}");
    let strings = "x = 'a'  # c\n#    ^ string\n#         ^ !string\n";
    assert_eq!(
        check_source(Language::Python, QueryKind::Context, strings, "ok"),
        (vec![], 2)
    );
}
