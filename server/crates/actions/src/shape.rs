//! What tree-sitter finds under the cursor: the enclosing function (its body, whether that body
//! is a stub, where its doc comment goes) and the statement a diagnostic falls in.
//! Plain data out (byte ranges, strings), so callers hold no tree across generation.

use std::ops::Range;

use moat_syntax::{Language, SyntaxTree};
use tree_sitter::Node;

/// A function with a body, as the actions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionShape {
    /// The function node (without decorators / attributes).
    pub range: Range<usize>,
    pub name: String,
    /// The body node (`{ … }` for brace languages, the indented block for Python).
    pub body: Range<usize>,
    /// The body is delimited by braces.
    pub braces: bool,
    /// Indentation of the line the function (or its decorators) starts on.
    pub indent: String,
    /// Indentation of the body's statements.
    pub body_indent: String,
    /// The body is empty or a placeholder (`pass`, `...`, `todo!()`, a "not implemented" throw).
    pub stub: bool,
    /// Python: the docstring that opens the body (kept when the body is filled).
    pub docstring: Option<Range<usize>>,
    /// A doc comment (or docstring) is already there.
    pub has_doc: bool,
    /// Start of the line where a doc comment above the item goes (above decorators, attributes,
    /// `export`).
    pub item_line_start: usize,
}

fn function_kinds(language: Language) -> &'static [&'static str] {
    match language {
        Language::Python => &["function_definition"],
        Language::Rust => &["function_item"],
        Language::JavaScript | Language::TypeScript | Language::Tsx => &[
            "function_declaration",
            "generator_function_declaration",
            "method_definition",
            "function_expression",
            "function",
            "arrow_function",
        ],
        Language::Go => &["function_declaration", "method_declaration"],
        Language::Java => &["method_declaration", "constructor_declaration"],
        Language::C | Language::Cpp => &["function_definition"],
        Language::Json | Language::Toml | Language::Bash => &[],
    }
}

/// Node kinds that hold statements: a node whose parent is one of these is a statement.
const STATEMENT_LISTS: &[&str] = &[
    "block",
    "module",
    "statement_block",
    "program",
    "source_file",
    "compound_statement",
    "declaration_list",
    "class_body",
    "constructor_body",
    "translation_unit",
    "switch_body",
];

pub(crate) fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

pub(crate) fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i)
}

pub(crate) fn indent_of_line(text: &str, at: usize) -> String {
    let start = line_start(text, at);
    text[start..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// One indentation step in the style of the text before `at` (tab, or 4 spaces).
fn indent_unit(indent: &str) -> &'static str {
    if indent.starts_with('\t') {
        "\t"
    } else {
        "    "
    }
}

/// The innermost function with a body that contains `range`. A cursor just after a function's
/// last character (the end of its last line) is in it too.
pub fn function_at(tree: &SyntaxTree, text: &str, range: Range<usize>) -> Option<FunctionShape> {
    let end = range.end.max(range.start).min(text.len());
    let start = range.start.min(end);
    innermost_function(tree, text, start, end).or_else(|| {
        (start == end && start > 0)
            .then(|| innermost_function(tree, text, start - 1, end))
            .flatten()
    })
}

fn innermost_function(
    tree: &SyntaxTree,
    text: &str,
    start: usize,
    end: usize,
) -> Option<FunctionShape> {
    let language = tree.language();
    let kinds = function_kinds(language);
    let root = tree.tree().root_node();
    let mut node = root.descendant_for_byte_range(start, end)?;
    loop {
        if kinds.contains(&node.kind())
            && node.start_byte() <= start
            && end <= node.end_byte()
            && let Some(shape) = describe(language, text, node)
        {
            return Some(shape);
        }
        node = node.parent()?;
    }
}

fn describe(language: Language, text: &str, node: Node<'_>) -> Option<FunctionShape> {
    let body = node.child_by_field_name("body")?;
    let braces = text[body.byte_range()].starts_with('{');
    if !braces && language != Language::Python {
        return None; // an arrow function with an expression body
    }
    let name = node
        .child_by_field_name("name")
        .or_else(|| {
            // C/C++: the name is inside the declarator; arrow functions: the variable's name.
            let mut d = node.child_by_field_name("declarator");
            while let Some(n) = d {
                if n.kind().ends_with("identifier") {
                    return Some(n);
                }
                d = n.child_by_field_name("declarator");
            }
            node.parent()
                .filter(|p| p.kind() == "variable_declarator")
                .and_then(|p| p.child_by_field_name("name"))
        })
        .map(|n| text[n.byte_range()].to_string())
        .unwrap_or_default();
    // The item: decorators (Python), attributes and doc comments (Rust), `export` (TS).
    let mut item = node;
    while let Some(parent) = item.parent() {
        if matches!(parent.kind(), "decorated_definition" | "export_statement")
            || (parent.kind() == "lexical_declaration" || parent.kind() == "variable_declarator")
                && node.kind() == "arrow_function"
        {
            item = parent;
        } else {
            break;
        }
    }
    let mut first = item;
    let mut has_doc = false;
    while let Some(prev) = first.prev_sibling() {
        let kind = prev.kind();
        let adjacent = text[prev.end_byte()..first.start_byte()]
            .chars()
            .filter(|&c| c == '\n')
            .count()
            <= 1;
        if !adjacent {
            break;
        }
        if kind == "attribute_item" || kind == "decorator" || kind == "marker_annotation" {
            first = prev;
        } else if kind.contains("comment") {
            has_doc = true;
            break;
        } else {
            break;
        }
    }
    let item_line_start = line_start(text, first.start_byte());
    let indent = indent_of_line(text, item_line_start);
    let body_range = body.byte_range();
    let (docstring, inner) = if braces {
        let inner_start = (body_range.start + 1).min(body_range.end);
        let inner_end = body_range.end.saturating_sub(1).max(inner_start);
        (None, text[inner_start..inner_end].to_string())
    } else {
        let first_stmt = body.named_child(0);
        let doc = first_stmt.filter(|s| {
            s.kind() == "expression_statement"
                && s.named_child(0).is_some_and(|c| c.kind() == "string")
        });
        let rest = doc.map_or(body_range.start, |d| d.end_byte());
        (
            doc.map(|d| d.byte_range()),
            text[rest..body_range.end].to_string(),
        )
    };
    has_doc |= docstring.is_some();
    let body_indent = if !braces
        && (text[..body_range.start].ends_with([' ', '\t'])
            || line_start(text, body_range.start) != line_start(text, node.start_byte()))
    {
        indent_of_line(text, body_range.start)
    } else {
        // Brace languages: the indentation of the first statement on a line of its own.
        let own_line = inner.split_once('\n').map(|(_, rest)| rest);
        match own_line.and_then(|rest| rest.lines().find(|l| !l.trim().is_empty())) {
            Some(l) => l.chars().take_while(|c| *c == ' ' || *c == '\t').collect(),
            None => format!("{indent}{}", indent_unit(&indent)),
        }
    };
    let body_indent = if body_indent.len() <= indent.len() {
        format!("{indent}{}", indent_unit(&indent))
    } else {
        body_indent
    };
    Some(FunctionShape {
        range: node.byte_range(),
        name,
        body: body_range,
        braces,
        indent,
        body_indent,
        stub: is_stub(&inner),
        docstring,
        has_doc,
        item_line_start,
    })
}

/// Whether a body's text (inside the braces, after any docstring) is empty or a placeholder.
pub fn is_stub(inner: &str) -> bool {
    let code: Vec<&str> = inner
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#'))
        .collect();
    if code.is_empty() {
        return true;
    }
    if code.len() > 1 {
        return false;
    }
    let compact: String = code[0]
        .trim_end_matches(';')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let lower = compact.to_ascii_lowercase();
    let says_todo = lower.contains("notimplemented") || lower.contains("todo");
    matches!(
        compact.as_str(),
        "pass" | "..." | "todo!()" | "unimplemented!()"
    ) || compact.starts_with("todo!(")
        || compact.starts_with("unimplemented!(")
        || compact.starts_with("raiseNotImplementedError")
        || (compact.starts_with("thrownew") && says_todo)
        || (compact.starts_with("panic(") && says_todo)
}

/// The statement a range falls in (the innermost node whose parent holds statements), within
/// `function` when given; the function itself when there is no smaller statement.
pub fn statement_at(
    tree: &SyntaxTree,
    text: &str,
    range: Range<usize>,
    function: Option<&FunctionShape>,
) -> Option<Range<usize>> {
    let root = tree.tree().root_node();
    let end = range.end.max(range.start).min(text.len());
    let start = range.start.min(end);
    let mut node = root.descendant_for_byte_range(start, end)?;
    loop {
        if let Some(f) = function
            && node.byte_range() == f.range
        {
            return Some(f.range.clone());
        }
        let parent = node.parent()?;
        if STATEMENT_LISTS.contains(&parent.kind()) && node.is_named() && !node.is_extra() {
            return Some(node.byte_range());
        }
        node = parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(language: Language, fixture: &str) -> FunctionShape {
        let at = fixture.find("$0").expect("fixture has $0");
        let text = fixture.replace("$0", "");
        let tree = SyntaxTree::parse(language, &text).expect("parses");
        function_at(&tree, &text, at..at).expect("a function")
    }

    #[test]
    fn stubs_are_recognised() {
        for stub in [
            "",
            "  pass",
            "...",
            "todo!()",
            "unimplemented!(\"later\")",
            "throw new Error(\"not implemented\");",
            "raise NotImplementedError",
            "panic(\"TODO\")",
            "// nothing yet\n",
        ] {
            assert!(is_stub(stub), "{stub:?}");
        }
        for body in ["return 1", "x = 1\npass", "throw new Error(\"bad input\");"] {
            assert!(!is_stub(body), "{body:?}");
        }
    }

    #[test]
    fn python_function_with_docstring_and_pass() {
        let s = shape(
            Language::Python,
            "class A:\n    @staticmethod\n    def add(a, b):\n        \"\"\"Adds.\"\"\"\n        pa$0ss\n",
        );
        assert_eq!(s.name, "add");
        assert!(s.stub && s.has_doc && !s.braces);
        assert_eq!(
            (s.indent.as_str(), s.body_indent.as_str()),
            ("    ", "        ")
        );
        assert_eq!(s.item_line_start, 9);
    }

    #[test]
    fn rust_todo_body_and_attributes() {
        let s = shape(
            Language::Rust,
            "#[inline]\npub fn add(a: u32, b: u32) -> u32 {\n    to$0do!()\n}\n",
        );
        assert_eq!(s.name, "add");
        assert!(s.stub && s.braces && !s.has_doc);
        assert_eq!(s.item_line_start, 0);
        assert_eq!(s.body_indent, "    ");
        let s = shape(Language::Rust, "/// Doc.\nfn f() {$0}\n");
        assert!(s.stub && s.has_doc);
    }

    #[test]
    fn typescript_method_and_export() {
        let s = shape(
            Language::TypeScript,
            "export function add(a: number): number {\n  throw new Error(\"not implemented\");$0\n}\n",
        );
        assert_eq!(s.name, "add");
        assert!(s.stub);
        assert_eq!(s.body_indent, "  ");
        let s = shape(
            Language::TypeScript,
            "class A {\n  size(): number {\n    return 1;$0\n  }\n}\n",
        );
        assert_eq!(s.name, "size");
        assert!(!s.stub);
        assert_eq!(s.indent, "  ");
    }

    #[test]
    fn the_statement_of_a_diagnostic() {
        let text =
            "def f(xs):\n    total = 0\n    for x in xs:\n        total += y\n    return total\n";
        let tree = SyntaxTree::parse(Language::Python, text).unwrap();
        let at = text.find("y\n").unwrap();
        let f = function_at(&tree, text, at..at + 1).unwrap();
        let s = statement_at(&tree, text, at..at + 1, Some(&f)).unwrap();
        assert_eq!(&text[s], "total += y");
    }
}
