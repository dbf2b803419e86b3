//! What one file contributes to the index: definitions (name, kind, signature, doc — never
//! bodies), import lines, and chunks of ~10–30 lines cut at syntax boundaries, each with its
//! identifier tokens for BM25.
//!
//! Owns: chunking, identifier tokenization (camelCase / snake_case split, lowercased, keywords
//! dropped), doc-comment and docstring extraction, per-language import-line recognition.
//! Must not: do IO or redact (callers pass text that is already redacted), or keep anything
//! beyond the one file it is given.

use std::path::Path;

use moat_syntax::{Language, MAX_PARSE_BYTES, SyntaxTree};

/// Chunks aim for this many lines, cut at the syntax boundary nearest to it…
pub const CHUNK_TARGET_LINES: usize = 20;
/// …but never fewer than this (unless the file ends)…
pub const CHUNK_MIN_LINES: usize = 10;
/// …nor more than this.
pub const CHUNK_MAX_LINES: usize = 30;
/// A chunk's text is cut at a line end before it exceeds this (minified-looking lines).
pub const CHUNK_MAX_BYTES: usize = 4096;
/// Longest doc comment kept with a definition, in bytes.
pub const MAX_DOC_BYTES: usize = 400;
/// At most this many doc-comment lines are kept with a definition.
pub const MAX_DOC_LINES: usize = 6;
/// Definitions beyond this many per file are dropped (generated tables).
pub const MAX_DEFINITIONS_PER_FILE: usize = 5000;
/// Import lines beyond this many per file are dropped.
pub const MAX_IMPORT_LINES: usize = 200;
/// Identifiers longer than this are not tokenized (hashes, generated names).
const MAX_IDENTIFIER_BYTES: usize = 64;

/// A definition as stored: what a prompt or `workspace/symbol` needs, no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefData {
    pub name: String,
    pub kind: String,
    /// 0-based line of the name.
    pub line: u32,
    pub signature: String,
    /// The doc comment above (verbatim lines) or the docstring's first line.
    pub doc: String,
    /// Whether `doc` is a docstring that follows the signature (Python).
    pub doc_after: bool,
    /// The innermost enclosing definition's name.
    pub container: Option<String>,
}

impl DefData {
    /// The definition as a prompt snippet: doc and signature, as they read in source.
    pub(crate) fn render(&self) -> String {
        if self.doc.is_empty() {
            self.signature.clone()
        } else if self.doc_after {
            format!("{}\n    \"\"\"{}\"\"\"", self.signature, self.doc)
        } else {
            format!("{}\n{}", self.doc, self.signature)
        }
    }
}

/// A chunk of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkData {
    /// 0-based first line.
    pub start_line: u32,
    /// 0-based line after the last one.
    pub end_line: u32,
    pub text: String,
    /// Identifier tokens, with repetitions (term frequencies count).
    pub tokens: Vec<String>,
}

/// Everything a file contributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FileData {
    pub defs: Vec<DefData>,
    pub imports: Vec<String>,
    pub chunks: Vec<ChunkData>,
}

/// Extracts definitions, imports and chunks from the (already redacted) text of the file at
/// workspace-relative `rel`.
pub(crate) fn extract(rel: &str, text: &str) -> FileData {
    let language = Language::from_path(Path::new(rel));
    let tree = match language {
        Some(lang) if text.len() <= MAX_PARSE_BYTES => SyntaxTree::parse(lang, text),
        _ => None,
    };
    let lines = line_starts(text);
    let defs = match &tree {
        Some(tree) => definitions(tree, text, &lines),
        None => Vec::new(),
    };
    let boundary_lines = boundary_lines(tree.as_ref(), text, &lines);
    FileData {
        defs,
        imports: import_lines(language, text),
        chunks: chunks(text, &lines, &boundary_lines),
    }
}

/// Chunks only (for open documents that are newer than the index).
pub(crate) fn extract_chunks(rel: &str, text: &str) -> Vec<ChunkData> {
    let language = Language::from_path(Path::new(rel));
    let tree = match language {
        Some(lang) if text.len() <= MAX_PARSE_BYTES => SyntaxTree::parse(lang, text),
        _ => None,
    };
    let lines = line_starts(text);
    let boundary_lines = boundary_lines(tree.as_ref(), text, &lines);
    chunks(text, &lines, &boundary_lines)
}

/// Byte offset of each line start.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .filter(|&i| i < text.len()),
    );
    starts
}

fn line_of(lines: &[usize], byte: usize) -> usize {
    lines
        .partition_point(|&start| start <= byte)
        .saturating_sub(1)
}

fn line_text<'t>(text: &'t str, lines: &[usize], line: usize) -> &'t str {
    let start = lines[line];
    let end = lines.get(line + 1).copied().unwrap_or(text.len());
    text[start..end].trim_end_matches(['\n', '\r'])
}

/// For each line, whether a chunk may start there: a syntax boundary when the file parsed,
/// otherwise a non-blank line at indentation 0 or after a blank line.
fn boundary_lines(tree: Option<&SyntaxTree>, text: &str, lines: &[usize]) -> Vec<bool> {
    let mut out = vec![false; lines.len()];
    match tree {
        Some(tree) => {
            for byte in tree.boundaries(text, 0..text.len()) {
                let line = line_of(lines, byte);
                out[line] = true;
            }
        }
        None => {
            let mut previous_blank = true;
            for (i, flag) in out.iter_mut().enumerate() {
                let line = line_text(text, lines, i);
                let blank = line.trim().is_empty();
                *flag = !blank && (previous_blank || !line.starts_with([' ', '\t']));
                previous_blank = blank;
            }
        }
    }
    out
}

/// Cuts the text into chunks of [`CHUNK_MIN_LINES`]..=[`CHUNK_MAX_LINES`] lines, each ending
/// where the next boundary nearest to [`CHUNK_TARGET_LINES`] begins.
fn chunks(text: &str, lines: &[usize], boundary: &[bool]) -> Vec<ChunkData> {
    let n = lines.len();
    let blank = |i: usize| line_text(text, lines, i).trim().is_empty();
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        while start < n && blank(start) {
            start += 1;
        }
        if start >= n {
            break;
        }
        let mut end = if n - start <= CHUNK_MAX_LINES {
            n
        } else {
            let lo = start + CHUNK_MIN_LINES;
            let hi = (start + CHUNK_MAX_LINES).min(n - 1);
            let target = start + CHUNK_TARGET_LINES;
            (lo..=hi)
                .filter(|&i| boundary[i])
                .min_by_key(|&i| (i.abs_diff(target), i))
                .unwrap_or(start + CHUNK_MAX_LINES)
        };
        // Keep the chunk's text bounded even when lines are long.
        let byte_start = lines[start];
        let line_end = |i: usize| lines.get(i).copied().unwrap_or(text.len());
        if line_end(end) - byte_start > CHUNK_MAX_BYTES {
            let mut e = start + 1;
            while e < end && line_end(e + 1) - byte_start <= CHUNK_MAX_BYTES {
                e += 1;
            }
            end = e;
        }
        let mut body = &text[byte_start..line_end(end)];
        if body.len() > CHUNK_MAX_BYTES {
            body = &body[..body.floor_char_boundary(CHUNK_MAX_BYTES)];
        }
        let body = body.trim_end();
        let mut tokens = Vec::new();
        push_tokens(body, &mut tokens);
        if !tokens.is_empty() {
            out.push(ChunkData {
                start_line: start as u32,
                end_line: end as u32,
                text: body.to_owned(),
                tokens,
            });
        }
        start = end;
    }
    out
}

/// Definitions with their docs and containers.
fn definitions(tree: &SyntaxTree, text: &str, lines: &[usize]) -> Vec<DefData> {
    let defs = tree.definitions(text);
    let python = tree.language() == Language::Python;
    let mut out = Vec::with_capacity(defs.len().min(MAX_DEFINITIONS_PER_FILE));
    // Ends and names of the enclosing definitions, innermost last.
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for def in defs.iter().take(MAX_DEFINITIONS_PER_FILE) {
        if def.name.is_empty() || def.name.len() > 200 {
            continue;
        }
        while stack.last().is_some_and(|&(end, _)| end <= def.range.start) {
            stack.pop();
        }
        let container = stack.last().map(|&(_, name)| name.to_owned());
        stack.push((def.range.end, &def.name));
        let def_line = line_of(lines, def.range.start);
        let docstring = if python {
            python_docstring(text, lines, def_line, def.range.end)
        } else {
            None
        };
        let (doc, doc_after) = match docstring {
            Some(doc) => (doc, true),
            None => (doc_above(text, lines, def_line), false),
        };
        out.push(DefData {
            name: def.name.clone(),
            kind: def.kind.clone(),
            line: line_of(lines, def.name_range.start) as u32,
            signature: def.signature.clone(),
            doc,
            doc_after,
            container,
        });
    }
    out
}

/// Whether a trimmed line is a comment line that may document the item below it.
fn is_doc_comment(trimmed: &str) -> bool {
    trimmed.starts_with("//")
        || trimmed.starts_with("/*")
        || trimmed.starts_with('*')
        || (trimmed.starts_with('#') && !trimmed.starts_with("#[") && !is_preprocessor(trimmed))
        || trimmed.starts_with("--")
}

fn is_preprocessor(trimmed: &str) -> bool {
    let rest = trimmed.trim_start_matches('#').trim_start();
    [
        "include", "define", "if", "ifdef", "ifndef", "else", "elif", "endif", "pragma", "undef",
    ]
    .iter()
    .any(|kw| rest.starts_with(kw))
        && !trimmed.starts_with("# ")
}

/// Whether a trimmed line is an attribute or decorator between a doc comment and its item.
fn is_attribute(trimmed: &str) -> bool {
    trimmed.starts_with("#[") || trimmed.starts_with('@')
}

/// The comment block directly above `def_line` (attributes and decorators skipped), verbatim
/// lines dedented, at most [`MAX_DOC_LINES`] lines / [`MAX_DOC_BYTES`] bytes.
fn doc_above(text: &str, lines: &[usize], def_line: usize) -> String {
    let mut line = def_line;
    let mut block: Vec<&str> = Vec::new();
    while line > 0 {
        line -= 1;
        let trimmed = line_text(text, lines, line).trim();
        if trimmed.is_empty() {
            break;
        }
        if is_doc_comment(trimmed) {
            block.push(trimmed);
        } else if is_attribute(trimmed) && block.is_empty() {
            continue;
        } else {
            break;
        }
    }
    block.reverse();
    // Skip licence-like banners and separators.
    if block.iter().all(|l| {
        l.trim_matches(|c: char| !c.is_alphanumeric())
            .trim()
            .is_empty()
    }) {
        return String::new();
    }
    let mut doc = String::new();
    for (i, l) in block.iter().enumerate() {
        if i == MAX_DOC_LINES || doc.len() + l.len() > MAX_DOC_BYTES {
            if block.last().is_some_and(|last| last.ends_with("*/")) && !doc.ends_with("*/") {
                doc.push_str("\n */");
            }
            break;
        }
        if !doc.is_empty() {
            doc.push('\n');
        }
        doc.push_str(l);
    }
    doc
}

/// The first line of a Python docstring: the first statement of the body, when it is a string.
fn python_docstring(
    text: &str,
    lines: &[usize],
    def_line: usize,
    def_end: usize,
) -> Option<String> {
    let last = line_of(lines, def_end.saturating_sub(1));
    let mut header_ended = false;
    for line in def_line..=last.min(def_line + 12) {
        let trimmed = line_text(text, lines, line).trim();
        if !header_ended {
            // The header ends at the first line ending with ':' (ignoring a trailing comment).
            let code = trimmed.split(" #").next().unwrap_or(trimmed).trim_end();
            if code.ends_with(':') {
                header_ended = true;
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let body = trimmed.trim_start_matches(['r', 'R', 'u', 'U', 'b', 'B']);
        let quote = ["\"\"\"", "'''", "\"", "'"]
            .into_iter()
            .find(|q| body.starts_with(q))?;
        let inner = body[quote.len()..].trim();
        let inner = inner.split(quote).next().unwrap_or(inner).trim();
        if !inner.is_empty() {
            return Some(truncate(inner, MAX_DOC_BYTES));
        }
        // `"""` alone: the summary is the next line.
        let next = line_text(text, lines, (line + 1).min(lines.len() - 1)).trim();
        let next = next.split(quote).next().unwrap_or(next).trim();
        return (!next.is_empty()).then(|| truncate(next, MAX_DOC_BYTES));
    }
    None
}

fn truncate(s: &str, max: usize) -> String {
    s[..s.floor_char_boundary(max)].to_owned()
}

/// The lines of `text` that import something, per language (simple line patterns; a line that
/// opens a parenthesised list continues to its closing parenthesis).
pub(crate) fn import_lines(language: Option<Language>, text: &str) -> Vec<String> {
    let Some(language) = language else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut continuing = 0usize;
    for line in text.lines() {
        if out.len() >= MAX_IMPORT_LINES {
            break;
        }
        let trimmed = line.trim();
        if continuing > 0 {
            out.push(truncate(trimmed, 200));
            continuing -= 1;
            if trimmed.contains(')') {
                continuing = 0;
            }
            continue;
        }
        if is_import(language, trimmed) {
            out.push(truncate(trimmed, 200));
            if trimmed.contains('(') && !trimmed.contains(')') {
                continuing = 50;
            }
        }
    }
    out
}

fn is_import(language: Language, line: &str) -> bool {
    let word = |prefix: &str| {
        line.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with([' ', '\t', '(', '{', '"', '\'', '*']))
    };
    match language {
        Language::Python => word("import") || (word("from") && line.contains(" import")),
        Language::Rust => {
            let mut rest = line;
            if let Some(r) = rest.strip_prefix("pub") {
                rest = r.trim_start();
                if rest.starts_with('(') {
                    rest = rest.split_once(')').map_or("", |(_, r)| r).trim_start();
                }
            }
            rest.starts_with("use ")
                || rest.starts_with("extern crate ")
                || (rest.starts_with("mod ") && rest.ends_with(';'))
        }
        Language::JavaScript | Language::TypeScript | Language::Tsx => {
            word("import")
                || (word("export") && line.contains(" from "))
                || ((word("const") || word("let") || word("var")) && line.contains("require("))
        }
        Language::Go => word("import"),
        Language::Java => word("import") || word("package"),
        Language::C | Language::Cpp => {
            line.strip_prefix('#')
                .is_some_and(|rest| rest.trim_start().starts_with("include"))
                || (language == Language::Cpp && (line.starts_with("using ") || word("import")))
        }
        Language::Bash => word("source") || line.starts_with(". "),
        Language::Json | Language::Toml => false,
    }
}

/// Words too common in code to say anything about similarity (keywords of the supported
/// languages and a few ubiquitous names). Sorted for binary search.
const STOPWORDS: &[&str] = &[
    "and",
    "as",
    "async",
    "auto",
    "await",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "class",
    "const",
    "continue",
    "crate",
    "def",
    "default",
    "defer",
    "del",
    "do",
    "double",
    "elif",
    "else",
    "end",
    "enum",
    "export",
    "extends",
    "extern",
    "false",
    "fi",
    "final",
    "finally",
    "float",
    "fn",
    "for",
    "from",
    "func",
    "function",
    "if",
    "impl",
    "implements",
    "import",
    "in",
    "include",
    "int",
    "interface",
    "is",
    "let",
    "long",
    "match",
    "mod",
    "mut",
    "new",
    "nil",
    "none",
    "not",
    "null",
    "of",
    "or",
    "package",
    "pass",
    "private",
    "protected",
    "pub",
    "public",
    "raise",
    "ref",
    "return",
    "self",
    "short",
    "static",
    "str",
    "struct",
    "super",
    "switch",
    "then",
    "this",
    "throw",
    "throws",
    "true",
    "try",
    "type",
    "typeof",
    "unsigned",
    "use",
    "var",
    "void",
    "where",
    "while",
    "with",
    "yield",
];

pub(crate) fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The identifiers in `text`, with their byte offsets, in order.
pub(crate) fn identifiers(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        loop {
            let (start, c) = chars.next()?;
            if is_ident_start(c) {
                let mut end = start + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if !is_ident_char(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                return Some((start, &text[start..end]));
            }
            if c.is_alphanumeric() {
                // A number (possibly with a suffix: 10u32): skip it whole.
                while chars.peek().is_some_and(|&(_, c)| is_ident_char(c)) {
                    chars.next();
                }
            }
        }
    })
}

/// The parts of an identifier: split at `_`, at lower→upper case changes and before the last
/// capital of an acronym (`parseHTTPResponse` → parse, HTTP, Response).
fn identifier_parts(ident: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for piece in ident.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<(usize, char)> = piece.char_indices().collect();
        let mut start = 0;
        for k in 1..chars.len() {
            let (i, c) = chars[k];
            let prev = chars[k - 1].1;
            let next_lower = chars.get(k + 1).is_some_and(|&(_, n)| n.is_lowercase());
            let cut = (c.is_uppercase() && (prev.is_lowercase() || prev.is_ascii_digit()))
                || (c.is_uppercase() && prev.is_uppercase() && next_lower);
            if cut {
                parts.push(&piece[start..i]);
                start = i;
            }
        }
        parts.push(&piece[start..]);
    }
    parts
}

/// Appends the BM25 tokens of `text`: each identifier lowercased, plus its parts when it has
/// several; keywords and one-letter tokens dropped.
pub(crate) fn push_tokens(text: &str, out: &mut Vec<String>) {
    for (_, ident) in identifiers(text) {
        if ident.len() > MAX_IDENTIFIER_BYTES {
            continue;
        }
        let whole = ident.to_lowercase();
        let keep = |t: &str| t.chars().count() >= 2 && !is_stopword(t);
        if keep(&whole) {
            out.push(whole.clone());
        }
        let parts = identifier_parts(ident);
        if parts.len() > 1 {
            for part in parts {
                let part = part.to_lowercase();
                if part != whole && keep(&part) {
                    out.push(part);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tokens_split_identifiers() {
        let mut t = Vec::new();
        push_tokens(
            "let parseHTTPResponse = user_id + 10u32 + self.x; // café_au_lait",
            &mut t,
        );
        assert_eq!(
            t,
            [
                "parsehttpresponse",
                "parse",
                "http",
                "response",
                "user_id",
                "user",
                "id",
                "café_au_lait",
                "café",
                "au",
                "lait"
            ]
        );
        assert_eq!(identifier_parts("HTTPServer2Go"), ["HTTP", "Server2", "Go"]);
        assert_eq!(identifier_parts("__init__"), ["init"]);
    }

    #[test]
    fn python_definitions_with_docs() {
        let src = "import os\nfrom utils.math import (\n    add,\n    sub,\n)\n\n# Shapes.\nclass Shape:\n    \"\"\"A shape.\"\"\"\n\n    @property\n    def area(self) -> float:\n        \"\"\"\n        The area.\n        \"\"\"\n        return 0.0\n";
        let data = extract("geo/shape.py", src);
        assert_eq!(
            data.imports,
            ["import os", "from utils.math import (", "add,", "sub,", ")"]
        );
        let defs: Vec<(String, String, u32, String, String)> = data
            .defs
            .iter()
            .map(|d| {
                (
                    d.name.clone(),
                    d.kind.clone(),
                    d.line,
                    d.doc.clone(),
                    d.container.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            defs,
            [
                (
                    "Shape".into(),
                    "class".into(),
                    7,
                    "A shape.".into(),
                    String::new()
                ),
                (
                    "area".into(),
                    "method".into(),
                    11,
                    "The area.".into(),
                    "Shape".into()
                ),
            ]
        );
        assert_eq!(
            data.defs[1].render(),
            "def area(self) -> float:\n    \"\"\"The area.\"\"\""
        );
    }

    #[test]
    fn rust_definitions_with_doc_comments() {
        let src = "use std::io;\npub(crate) use a::b;\nmod x;\n\n/// Adds.\n/// Twice.\n#[inline]\npub fn add(a: u32) -> u32 {\n    a + a\n}\n";
        let data = extract("src/lib.rs", src);
        assert_eq!(
            data.imports,
            ["use std::io;", "pub(crate) use a::b;", "mod x;"]
        );
        let add = data.defs.iter().find(|d| d.name == "add").unwrap();
        assert_eq!(
            add.render(),
            "/// Adds.\n/// Twice.\npub fn add(a: u32) -> u32"
        );
        assert_eq!(add.line, 7);
    }

    #[test]
    fn chunks_cut_at_boundaries_and_cover_the_file() {
        let mut src = String::new();
        for i in 0..20 {
            src.push_str(&format!(
                "def f{i}(x):\n    y = x + {i}\n    z = y * 2\n    return z\n\n"
            ));
        }
        let data = extract("a.py", &src);
        assert!(data.chunks.len() >= 3);
        let mut next = 0;
        for chunk in &data.chunks {
            let len = chunk.end_line - chunk.start_line;
            assert!(len <= CHUNK_MAX_LINES as u32, "{chunk:?}");
            assert!(chunk.text.starts_with("def f"), "{}", chunk.text);
            assert!(chunk.start_line >= next);
            next = chunk.end_line;
        }
        assert_eq!(next as usize, src.lines().count());
        // Without a grammar: blank-line boundaries.
        let data = extract("notes.txt", &src);
        assert!(data.chunks.iter().all(|c| c.text.starts_with("def f")));
        assert!(data.defs.is_empty());
    }

    #[test]
    fn long_lines_keep_chunks_bounded() {
        let line = format!("value = \"{}\"\n", "a ".repeat(1500));
        let src = line.repeat(5);
        let chunks = extract_chunks("a.py", &src);
        assert!(chunks.iter().all(|c| c.text.len() <= CHUNK_MAX_BYTES));
        assert_eq!(chunks.len(), 5);
    }
}
