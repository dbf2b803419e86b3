//! `moat-actions`: code actions that write code — fill a stub body, write a doc comment, fix a
//! diagnostic, write a test.
//!
//! Owns: finding the shape an action applies to (tree-sitter, [`shape`]), the FIM prompt of each
//! action (repository snippets first, then the file with the part to write cut out), where
//! generation stops ([`stop`]: syntax boundaries found as the text grows) and the check that the
//! result parses (no ERROR/MISSING node in the edited region, no new error in the file).
//! Must not: know LSP types, do IO, or hold a lock across generation. Byte offsets only.
//!
//! Every action is a FIM request: the prefix is the text before the part to write (plus a short
//! lead-in such as `/// ` or `def test_`), the suffix the text after it. The default model
//! (Qwen2.5-Coder-0.5B-Instruct) is also a chat model, but measured on held-out bodies
//! (tests/fill-body-eval/chat_vs_fim.py) its chat answers reach an edit similarity of 0.05-0.13
//! against FIM's 0.46-0.58: in chat it mostly hands the stub back, while FIM sees the file
//! around the gap.

pub mod shape;
pub mod stop;

use std::ops::Range;
use std::time::{Duration, Instant};

use moat_complete::Snippet;
use moat_model::{Backend, CancelToken, FinishReason, GenerateRequest, Healing, ModelError};
use moat_syntax::{Language, SyntaxTree};
use serde::{Deserialize, Serialize};

pub use shape::{FunctionShape, function_at, is_stub, statement_at};

/// The actions this crate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    FillBody,
    WriteDoc,
    FixDiagnostic,
    WriteTest,
}

impl ActionKind {
    pub const ALL: [ActionKind; 4] = [
        ActionKind::FillBody,
        ActionKind::WriteDoc,
        ActionKind::FixDiagnostic,
        ActionKind::WriteTest,
    ];

    /// The name used in settings and resolve data (`fillBody`, …).
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::FillBody => "fillBody",
            ActionKind::WriteDoc => "writeDoc",
            ActionKind::FixDiagnostic => "fixDiagnostic",
            ActionKind::WriteTest => "writeTest",
        }
    }

    /// Most tokens the model may write for this action.
    pub fn max_new_tokens(self) -> usize {
        match self {
            ActionKind::FillBody => 320,
            ActionKind::WriteDoc => 120,
            ActionKind::FixDiagnostic => 160,
            ActionKind::WriteTest => 256,
        }
    }
}

/// An action that applies at a place, before anything is generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub kind: ActionKind,
    pub title: String,
    /// Index into the diagnostics passed to [`offers`] (for `FixDiagnostic`).
    pub diagnostic: Option<usize>,
}

/// A diagnostic from the client, in byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub range: Range<usize>,
    pub message: String,
}

/// The actions that apply to `range` (the cursor or selection) in `text`.
pub fn offers(
    tree: &SyntaxTree,
    text: &str,
    range: Range<usize>,
    diagnostics: &[Diagnostic],
) -> Vec<Offer> {
    let mut out = Vec::new();
    let function = function_at(tree, text, range.clone());
    if let Some(f) = &function {
        let name = if f.name.is_empty() {
            "this function".to_string()
        } else {
            format!("`{}`", f.name)
        };
        if f.stub {
            out.push(Offer {
                kind: ActionKind::FillBody,
                title: format!("moat: fill the body of {name}"),
                diagnostic: None,
            });
        }
        if !f.has_doc && doc_style(tree.language()).is_some() {
            out.push(Offer {
                kind: ActionKind::WriteDoc,
                title: format!("moat: write the doc comment of {name}"),
                diagnostic: None,
            });
        }
        if !f.stub
            && !f.name.is_empty()
            && !f.name.starts_with("test")
            && matches!(
                tree.language(),
                Language::Python | Language::Rust | Language::TypeScript | Language::JavaScript
            )
        {
            out.push(Offer {
                kind: ActionKind::WriteTest,
                title: format!("moat: write a test for {name}"),
                diagnostic: None,
            });
        }
    }
    for (i, d) in diagnostics.iter().enumerate() {
        if d.range.end > text.len() || statement_at(tree, text, d.range.clone(), None).is_none() {
            continue;
        }
        let message: String = d
            .message
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect();
        out.push(Offer {
            kind: ActionKind::FixDiagnostic,
            title: format!("moat: fix: {message}"),
            diagnostic: Some(i),
        });
    }
    out
}

/// Where a test goes, as the caller (which can read files) found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    /// Workspace-relative path, or `None` for the function's own file.
    pub path: Option<String>,
    /// The file's text; `None` when it does not exist yet (it is created).
    pub text: Option<String>,
    /// The line that imports the function into the test file (`from pkg.mod import name`,
    /// `import { name } from "./mod";`); added when the test file does not mention the name.
    pub import_line: Option<String>,
}

pub struct ActionInput<'a> {
    pub kind: ActionKind,
    pub text: &'a str,
    pub path: &'a str,
    pub tree: &'a SyntaxTree,
    /// The cursor or selection the action was offered for.
    pub range: Range<usize>,
    pub diagnostic: Option<&'a Diagnostic>,
    /// Repository context, least useful first.
    pub snippets: &'a [Snippet],
    /// For `WriteTest`.
    pub test_file: Option<&'a TestFile>,
}

/// One replacement. `path: None` is the action's own document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub path: Option<String>,
    /// The file does not exist and is created with `new_text`.
    pub create: bool,
    pub range: Range<usize>,
    pub new_text: String,
}

impl FileEdit {
    /// An edit of the document the action runs on.
    pub fn in_document(range: Range<usize>, new_text: impl Into<String>) -> Self {
        FileEdit {
            path: None,
            create: false,
            range,
            new_text: new_text.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    pub edits: Vec<FileEdit>,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    NotApplicable(String),
    #[error("the model failed: {0}")]
    Model(ModelError),
    #[error("the model wrote nothing usable: {0}")]
    Empty(String),
    #[error(
        "the model's {what} does not parse ({errors} syntax error(s) in the edited region), so nothing was changed"
    )]
    DoesNotParse { what: &'static str, errors: usize },
}

impl From<ModelError> for ActionError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Cancelled => ActionError::Cancelled,
            e => ActionError::Model(e),
        }
    }
}

/// How a language writes a function's doc comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocStyle {
    /// `"""…"""` as the body's first statement.
    Docstring,
    /// Line comments above the item (`///`, `//`).
    Lines(&'static str),
    /// `/** … */` above the item (JSDoc, Javadoc).
    Block,
}

fn doc_style(language: Language) -> Option<DocStyle> {
    Some(match language {
        Language::Python => DocStyle::Docstring,
        Language::Rust => DocStyle::Lines("///"),
        Language::Go | Language::C | Language::Cpp => DocStyle::Lines("//"),
        Language::JavaScript | Language::TypeScript | Language::Tsx | Language::Java => {
            DocStyle::Block
        }
        Language::Json | Language::Toml | Language::Bash => return None,
    })
}

/// Where generation stops: the byte of the generated text to cut at.
type StopAt = Box<dyn Fn(&str) -> Option<usize> + Sync>;
/// Turns what the model wrote into the edit.
type Finish = Box<dyn Fn(&str) -> Result<FileEdit, ActionError>>;

/// The gap the model fills: the text around it and what the edit puts in its place.
struct Gap {
    /// Text before the gap (the file's, plus the lead-in).
    prefix: String,
    /// Text after the gap.
    suffix: String,
    stop: StopAt,
}

/// Runs one action. Blocking (the model runs here): call it from a blocking thread. Checks
/// `cancel` before every model step; `progress` hears what it is doing.
pub fn run(
    input: &ActionInput<'_>,
    backend: &dyn Backend,
    cancel: &CancelToken,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ActionOutcome, ActionError> {
    let start = Instant::now();
    let text = input.text;
    let language = input.tree.language();
    let rust = language == Language::Rust;
    if input.range.end > text.len() || input.range.start > input.range.end {
        return Err(ActionError::NotApplicable(
            "the range is outside the document".into(),
        ));
    }
    let function = function_at(input.tree, text, input.range.clone());
    let need_function = || {
        function.clone().ok_or_else(|| {
            ActionError::NotApplicable("there is no function with a body here".into())
        })
    };
    // What the model writes, and how it becomes the edit.
    let (gap, finish): (Gap, Finish) = match input.kind {
        ActionKind::FillBody => {
            let f = need_function()?;
            if !f.stub {
                return Err(ActionError::NotApplicable(format!(
                    "the body of `{}` is not empty or a placeholder",
                    f.name
                )));
            }
            fill_body(text, &f, rust)
        }
        ActionKind::WriteDoc => {
            let f = need_function()?;
            let style = doc_style(language).ok_or_else(|| {
                ActionError::NotApplicable("this language has no doc comments".into())
            })?;
            write_doc(text, &f, style)?
        }
        ActionKind::FixDiagnostic => {
            let d = input.diagnostic.ok_or_else(|| {
                ActionError::NotApplicable("no diagnostic was given to fix".into())
            })?;
            if d.range.end > text.len() {
                return Err(ActionError::NotApplicable(
                    "the diagnostic's range is outside the document".into(),
                ));
            }
            let stmt = statement_at(input.tree, text, d.range.clone(), function.as_ref())
                .ok_or_else(|| {
                    ActionError::NotApplicable("no statement encloses the diagnostic".into())
                })?;
            fix_statement(text, language, stmt, &d.message, rust)
        }
        ActionKind::WriteTest => {
            let f = need_function()?;
            let target = input.test_file.cloned().unwrap_or(TestFile {
                path: None,
                text: None,
                import_line: None,
            });
            write_test(text, language, &f, &target)?
        }
    };

    // A test needs the function it tests in view (the index leaves the current file out).
    let mut snippets = input.snippets.to_vec();
    if input.kind == ActionKind::WriteTest
        && let Some(f) = &function
    {
        snippets.push(Snippet {
            path: input.path.to_string(),
            text: text[f.item_line_start..f.range.end].to_string(),
        });
    }
    progress("asking the model");
    let (written, prompt_tokens, generated_tokens) =
        generate(backend, &snippets, language, &gap, input.kind, cancel)?;
    progress("checking the result");
    let edit = finish(&written)?;
    if let Err(e) = validate(input, &edit, language) {
        tracing::info!(action = input.kind.name(), written = %edit.new_text, "refused: {e}");
        return Err(e);
    }
    Ok(ActionOutcome {
        edits: vec![edit],
        prompt_tokens,
        generated_tokens,
        elapsed: start.elapsed(),
    })
}

fn fill_body(text: &str, f: &FunctionShape, rust: bool) -> (Gap, Finish) {
    // The body's range, the gap the model writes into, and what follows the body in the edit.
    let (range, gap, after) = if f.braces {
        // `{` … `}`: the model writes the lines between, stopping at the closer.
        let open = f.body.start + 1;
        let close = f.body.end.saturating_sub(1).max(open);
        let gap = Gap {
            prefix: format!("{}\n", &text[..open]),
            suffix: format!("{}}}{}", f.indent, &text[f.body.end..]),
            stop: Box::new(move |g| stop::unbalanced_closer(g, rust)),
        };
        (open..close, gap, format!("\n{}", f.indent))
    } else {
        // Python: after the docstring if there is one, else after the colon of the header.
        let start = match &f.docstring {
            Some(d) => d.end,
            None => text[..f.body.start]
                .rfind(':')
                .map_or(f.body.start, |i| i + 1),
        };
        let width = f.body_indent.len();
        let gap = Gap {
            prefix: format!("{}\n", &text[..start]),
            suffix: text[f.body.end..].to_string(),
            stop: Box::new(move |g| stop::dedent_cut(g, width)),
        };
        (start..f.body.end, gap, String::new())
    };
    let body_indent = f.body_indent.clone();
    let finish: Finish = Box::new(move |g: &str| {
        let body = clean_block(g, &body_indent);
        if body.trim().is_empty() {
            return Err(ActionError::Empty("an empty body".into()));
        }
        Ok(FileEdit::in_document(
            range.clone(),
            format!("\n{body}{after}"),
        ))
    });
    (gap, finish)
}

/// Generated lines as a block: trailing blank lines dropped, a first line without indentation
/// given the block's.
fn clean_block(g: &str, indent: &str) -> String {
    let g = g.trim_end();
    let g = g.trim_start_matches(['\n', '\r']);
    if !g.starts_with([' ', '\t']) && !g.is_empty() {
        format!("{indent}{g}")
    } else {
        g.to_string()
    }
}

fn write_doc(text: &str, f: &FunctionShape, style: DocStyle) -> Result<(Gap, Finish), ActionError> {
    match style {
        DocStyle::Docstring => {
            let body_line = shape::line_start(text, f.body.start);
            if body_line <= shape::line_start(text, f.range.start) {
                return Err(ActionError::NotApplicable(
                    "the body is on the header's line; put it on its own line first".into(),
                ));
            }
            let indent = f.body_indent.clone();
            let gap = Gap {
                prefix: format!("{}{indent}\"\"\"", &text[..body_line]),
                suffix: format!("\"\"\"\n{}", &text[body_line..]),
                stop: Box::new(|g| g.find("\"\"\"").or_else(|| nth_line(g, 12))),
            };
            let finish: Finish = Box::new(move |g: &str| {
                let doc = g.trim_end();
                if doc.trim().is_empty() {
                    return Err(ActionError::Empty("an empty docstring".into()));
                }
                let close = if doc.contains('\n') {
                    format!("\n{indent}\"\"\"")
                } else {
                    "\"\"\"".into()
                };
                Ok(FileEdit::in_document(
                    body_line..body_line,
                    format!("{indent}\"\"\"{}{close}\n", doc.trim_start()),
                ))
            });
            Ok((gap, finish))
        }
        DocStyle::Lines(marker) => {
            let at = f.item_line_start;
            let indent = f.indent.clone();
            // Go's convention: the comment starts with the name.
            let lead = if marker == "//" && !f.name.is_empty() {
                format!("{} ", f.name)
            } else {
                String::new()
            };
            let head = format!("{indent}{marker} {lead}");
            let gap = Gap {
                prefix: format!("{}{head}", &text[..at]),
                suffix: text[at..].to_string(),
                stop: Box::new(move |g| {
                    // Each later line must go on with the marker; the first that does not ends it.
                    let mut pos = 0;
                    for (i, line) in g.split_inclusive('\n').enumerate() {
                        if i > 0 {
                            let t = line.trim_start();
                            let decided = t.len() >= marker.len() || line.ends_with('\n');
                            if decided && !t.starts_with(marker) {
                                return Some(pos);
                            }
                        }
                        if i >= 8 {
                            return Some(pos);
                        }
                        pos += line.len();
                    }
                    None
                }),
            };
            let finish: Finish = Box::new(move |g: &str| {
                let doc = g.trim_end();
                if doc.trim().is_empty() {
                    return Err(ActionError::Empty("an empty doc comment".into()));
                }
                let mut out = head.clone();
                for (i, line) in doc.lines().enumerate() {
                    if i > 0 {
                        out.push('\n');
                        out.push_str(&indent);
                        out.push_str(line.trim_start());
                    } else {
                        out.push_str(line.trim());
                    }
                }
                out.push('\n');
                Ok(FileEdit::in_document(at..at, out))
            });
            Ok((gap, finish))
        }
        DocStyle::Block => {
            let at = f.item_line_start;
            let indent = f.indent.clone();
            let gap = Gap {
                prefix: format!("{}{indent}/**\n{indent} * ", &text[..at]),
                suffix: text[at..].to_string(),
                stop: Box::new(|g| g.find("*/").or_else(|| nth_line(g, 12))),
            };
            let finish: Finish = Box::new(move |g: &str| {
                let mut lines: Vec<&str> = g.lines().collect();
                while lines
                    .last()
                    .is_some_and(|l| l.trim().trim_start_matches('*').trim().is_empty())
                {
                    lines.pop();
                }
                if lines.is_empty() {
                    return Err(ActionError::Empty("an empty doc comment".into()));
                }
                let mut out = format!("{indent}/**\n{indent} * {}", lines[0].trim());
                for line in &lines[1..] {
                    let t = line.trim_start();
                    let t = t.strip_prefix('*').unwrap_or(t).trim_end();
                    out.push_str(&format!("\n{indent} *{t}"));
                }
                out.push_str(&format!("\n{indent} */\n"));
                Ok(FileEdit::in_document(at..at, out))
            });
            Ok((gap, finish))
        }
    }
}

fn nth_line(g: &str, n: usize) -> Option<usize> {
    g.match_indices('\n').nth(n).map(|(i, _)| i)
}

fn fix_statement(
    text: &str,
    language: Language,
    stmt: Range<usize>,
    message: &str,
    rust: bool,
) -> (Gap, Finish) {
    let start = shape::line_start(text, stmt.start);
    let end = shape::line_end(text, stmt.end);
    let indent = shape::indent_of_line(text, start);
    let original = text[start..end].to_string();
    let comment = language.line_comment().unwrap_or("//");
    let message: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let width = indent.len();
    let lines = original.lines().count();
    let gap = Gap {
        // The diagnostic as a comment above the gap: the model writes the statement that
        // follows such a note.
        prefix: format!("{}{indent}{comment} Fixed: {message}\n", &text[..start]),
        suffix: text[end..].to_string(),
        stop: Box::new(move |g| {
            stop::statement_done(g, width, rust).or_else(|| nth_line(g, lines + 6))
        }),
    };
    let marker = comment.to_string();
    let finish: Finish = Box::new(move |g: &str| {
        // The model sometimes writes the fixed line commented out, after the note above it.
        let uncommented;
        let g = if g
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.trim_start().starts_with(&marker))
        {
            uncommented = g
                .lines()
                .map(|l| {
                    let body = l.trim_start();
                    let lead = &l[..l.len() - body.len()];
                    let rest = body.strip_prefix(&marker).unwrap_or(body);
                    format!("{lead}{}", rest.strip_prefix(' ').unwrap_or(rest))
                })
                .collect::<Vec<_>>()
                .join("\n");
            uncommented.as_str()
        } else {
            g
        };
        let fixed = clean_block(g, &indent);
        if fixed.trim().is_empty() {
            return Err(ActionError::Empty("an empty statement".into()));
        }
        if fixed.trim() == original.trim() {
            return Err(ActionError::Empty(
                "the same statement again (the model found no fix)".into(),
            ));
        }
        Ok(FileEdit::in_document(start..end, fixed))
    });
    (gap, finish)
}

fn write_test(
    text: &str,
    language: Language,
    f: &FunctionShape,
    target: &TestFile,
) -> Result<(Gap, Finish), ActionError> {
    let rust = language == Language::Rust;
    let name = f.name.clone();
    // Where the test goes, the text around it, and the scaffold before what the model writes.
    let (file, at, before, stop): (&str, usize, String, StopAt) = match language {
        Language::Python => {
            let file = target.text.as_deref().unwrap_or("");
            let mut before = String::new();
            if !file.is_empty() && !file.ends_with('\n') {
                before.push('\n');
            }
            before.push_str(if file.trim().is_empty() { "\n" } else { "\n\n" });
            before.push_str(&format!("def test_{name}"));
            let stop: StopAt = Box::new(|g| {
                let first = g.find('\n')? + 1;
                // A test, not a table of cases: at most 12 lines.
                stop::dedent_cut(&g[first..], 1)
                    .map(|i| first + i)
                    .or_else(|| nth_line(g, 12).map(|i| i + 1))
            });
            (file, file.len(), before, stop)
        }
        Language::Rust => {
            let tree = SyntaxTree::parse(language, text)
                .ok_or_else(|| ActionError::NotApplicable("the file does not parse".into()))?;
            let module = tests_module(&tree, text);
            let (at, before) = match module {
                Some(close) => (
                    shape::line_start(text, close),
                    format!("\n    #[test]\n    fn {name}_"),
                ),
                None => (
                    text.len(),
                    format!(
                        "{}\n#[cfg(test)]\nmod tests {{\n    use super::*;\n\n    #[test]\n    fn {name}_",
                        if text.ends_with('\n') { "" } else { "\n" }
                    ),
                ),
            };
            let stop: StopAt = Box::new(|g| stop::block_done(g, true));
            (text, at, before, stop)
        }
        _ => {
            let file = target.text.as_deref().ok_or_else(|| {
                ActionError::NotApplicable(
                    "no test file found for this module (add one beside it, e.g. `name.test.ts`)"
                        .into(),
                )
            })?;
            let call = if file.contains("\nit(") || file.contains(" it(") {
                "it"
            } else {
                "test"
            };
            let mut before = String::new();
            if !file.ends_with('\n') {
                before.push('\n');
            }
            before.push_str(&format!("\n{call}(\"{name}"));
            let stop: StopAt = Box::new(|g| stop::block_done(g, false));
            (file, file.len(), before, stop)
        }
    };
    let after = if rust && tests_module_missing(&before) {
        "}\n".to_string()
    } else {
        String::new()
    };
    let gap = Gap {
        prefix: format!("{}{before}", &file[..at]),
        suffix: format!("{after}{}", &file[at..]),
        stop,
    };
    let file_text = file.to_string();
    if !rust && target.path.is_none() {
        return Err(ActionError::NotApplicable(
            "no test file was found or can be made for this module".into(),
        ));
    }
    let path = if rust { None } else { target.path.clone() };
    let create = !rust && target.text.is_none();
    // The import goes after the file's leading imports (at the top of a new file).
    let import = (!rust)
        .then(|| target.import_line.clone())
        .flatten()
        .filter(|_| !file.contains(name.as_str()))
        .map(|line| (import_position(file), format!("{line}\n")));
    let finish: Finish = Box::new(move |g: &str| {
        let body = g.trim_end();
        if body.trim().is_empty() {
            return Err(ActionError::Empty("an empty test".into()));
        }
        let test = format!("{before}{body}\n{after}");
        Ok(match &import {
            // One edit: from the import's place to the test's (both insertions).
            Some((i, line)) => FileEdit {
                path: path.clone(),
                create,
                range: *i..at,
                new_text: format!("{line}{}{test}", &file_text[*i..at]),
            },
            None => FileEdit {
                path: path.clone(),
                create,
                range: at..at,
                new_text: test,
            },
        })
    });
    Ok((gap, finish))
}

/// After the leading block of `import`/`from`/`use` lines (0 when there is none).
fn import_position(file: &str) -> usize {
    let mut end = 0;
    let mut pos = 0;
    for line in file.split_inclusive('\n') {
        let t = line.trim_start();
        pos += line.len();
        if t.starts_with("import ")
            || t.starts_with("from ")
            || t.starts_with("const ") && t.contains("require(")
        {
            end = pos;
        } else if !(t.trim().is_empty()
            || t.starts_with('#')
            || t.starts_with("//")
            || t.starts_with("\"\"\""))
            && end > 0
        {
            break;
        }
    }
    end
}

fn tests_module_missing(before: &str) -> bool {
    before.contains("mod tests {")
}

/// The byte of the closing brace of a Rust `mod tests { … }`.
fn tests_module(tree: &SyntaxTree, text: &str) -> Option<usize> {
    let root = tree.tree().root_node();
    let mut cursor = root.walk();
    for child in root.named_children(&mut cursor) {
        if child.kind() == "mod_item"
            && child
                .child_by_field_name("name")
                .is_some_and(|n| &text[n.byte_range()] == "tests")
            && let Some(body) = child.child_by_field_name("body")
        {
            return Some(body.end_byte().saturating_sub(1));
        }
    }
    None
}

/// The FIM request: snippets, then `prefix`/`suffix` cut to fit the context. Returns the text
/// written (cut at the gap's stop) and token counts.
fn generate(
    backend: &dyn Backend,
    snippets: &[Snippet],
    language: Language,
    gap: &Gap,
    kind: ActionKind,
    cancel: &CancelToken,
) -> Result<(String, usize, usize), ActionError> {
    let tokenizer = backend.tokenizer();
    let max_new = kind.max_new_tokens();
    let limit = backend.context_length().saturating_sub(max_new + 8);
    if limit < 64 {
        return Err(ActionError::NotApplicable(
            "the model's context is too small for code actions".into(),
        ));
    }
    let prefix = fit(tokenizer, &gap.prefix, limit * 3 / 4, true);
    let suffix = fit(tokenizer, &gap.suffix, limit / 4, false);
    let prefix_ids = tokenizer.encode(&prefix);
    let suffix_ids = tokenizer.encode(&suffix);
    let mut context = Vec::new();
    let room = limit.saturating_sub(prefix_ids.len() + suffix_ids.len());
    let comment = language.line_comment();
    for s in snippets.iter().rev() {
        let ids = match (tokenizer.file_separator(), comment) {
            (Some(sep), _) => {
                let mut ids = vec![sep];
                ids.extend(tokenizer.encode(&format!("{}\n{}\n", s.path, s.text.trim_end())));
                ids
            }
            (None, Some(c)) => {
                let mut t = format!("{c} {}\n", s.path);
                for line in s.text.trim_end().lines() {
                    t.push_str(&format!("{c} {line}\n"));
                }
                tokenizer.encode(&t)
            }
            (None, None) => tokenizer.encode(&format!("{}\n{}\n", s.path, s.text.trim_end())),
        };
        if context.len() + ids.len() > room {
            continue;
        }
        context.splice(0..0, ids);
    }
    let prompt = tokenizer.fim_prompt(&context, &prefix_ids, &suffix_ids);
    let check = |bytes: &[u8]| -> Option<usize> {
        let valid = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        (gap.stop)(valid).or_else(|| stop::repetition_cut(valid))
    };
    let request = GenerateRequest::new(prompt, max_new, Healing::none(), Some(&check));
    let generation = backend.generate(&request, cancel)?;
    if cancel.is_cancelled() {
        return Err(ActionError::Cancelled);
    }
    let written = String::from_utf8_lossy(&generation.bytes).into_owned();
    // A stop check cut what it saw; apply it once more to the whole text (the last token may
    // have crossed the boundary without a check after it).
    let written = match (gap.stop)(&written).or_else(|| stop::repetition_cut(&written)) {
        Some(cut) => written[..cut].to_string(),
        // Out of tokens before a boundary: the last line is likely cut short; drop it.
        None if generation.finish == FinishReason::MaxTokens => {
            written[..written.rfind('\n').map_or(0, |i| i + 1)].to_string()
        }
        None => written,
    };
    Ok((written, request.prompt.len(), generation.tokens.len()))
}

/// `text` cut to about `budget` tokens at a line boundary: its end kept when `keep_end`, else
/// its start.
fn fit(
    tokenizer: &moat_model::ModelTokenizer,
    text: &str,
    budget: usize,
    keep_end: bool,
) -> String {
    let mut s = text;
    loop {
        let n = tokenizer.encode(s).len();
        if n <= budget || s.is_empty() {
            return s.to_string();
        }
        let keep = (s.len() as f64 * budget as f64 / n as f64 * 0.95) as usize;
        s = if keep_end {
            let from = s.ceil_char_boundary(s.len() - keep.min(s.len()));
            let from = s[from..].find('\n').map_or(from, |i| from + i + 1);
            &s[from..]
        } else {
            let to = s.floor_char_boundary(keep.min(s.len()));
            let to = s[..to].rfind('\n').map_or(to, |i| i + 1);
            &s[..to]
        };
    }
}

/// The result must parse: no ERROR or MISSING node in the edited region, no more errors in the
/// whole file than before.
fn validate(
    input: &ActionInput<'_>,
    edit: &FileEdit,
    language: Language,
) -> Result<(), ActionError> {
    let what = match input.kind {
        ActionKind::FillBody => "body",
        ActionKind::WriteDoc => "doc comment",
        ActionKind::FixDiagnostic => "fix",
        ActionKind::WriteTest => "test",
    };
    let old: &str = match (&edit.path, input.test_file) {
        (None, _) => input.text,
        (Some(_), Some(t)) => t.text.as_deref().unwrap_or(""),
        (Some(_), None) => "",
    };
    let target_language = match &edit.path {
        Some(p) => Language::from_path(std::path::Path::new(p)).unwrap_or(language),
        None => language,
    };
    let start = edit.range.start.min(old.len());
    let end = edit.range.end.min(old.len()).max(start);
    let new = format!("{}{}{}", &old[..start], edit.new_text, &old[end..]);
    let errors_before =
        SyntaxTree::parse(target_language, old).map_or(0, |t| t.error_count_in(0..old.len()));
    let Some(tree) = SyntaxTree::parse(target_language, &new) else {
        return Err(ActionError::DoesNotParse { what, errors: 1 });
    };
    let region = start..start + edit.new_text.len();
    let in_region = tree.error_count_in(region);
    let total = tree.error_count_in(0..new.len());
    if in_region > 0 || total > errors_before {
        return Err(ActionError::DoesNotParse {
            what,
            errors: in_region.max(total - errors_before.min(total)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
