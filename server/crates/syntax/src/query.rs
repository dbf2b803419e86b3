//! Questions the completion pipeline asks about a parsed document: where is the cursor
//! (comment, string, block), where do statements begin, what does the file define, and how many
//! syntax errors are in a range.
//!
//! Owns: the meaning of the captures in `context.scm` (`@comment`, `@string`, `@block`) and
//! `tags.scm` (`@definition.*` with `@name`).
//! Must not: panic on any offset or on text that does not match the tree (offsets are clamped
//! to the text and to char boundaries), or know what a model or a prompt is.

use std::ops::{ControlFlow, Range};

use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Query, QueryCursor};

use crate::language::QueryKind;
use crate::{Language, SyntaxTree};

/// Where the cursor is, syntactically.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CursorInfo {
    /// Strictly inside a comment. The end of a line comment counts as inside (typing there
    /// extends the comment); the position right after `*/` does not.
    pub in_comment: bool,
    /// Strictly inside a string literal: after the opening quote and not after the closing
    /// one. Inside an interpolation (`${..}`, f-string `{..}`) is code, not string. An opening
    /// quote the parser could not close (`print("hel|`) counts too.
    pub in_string: bool,
    /// The innermost `@block` (body, `{..}` block, object/array literal…) around the cursor.
    /// A block with a closing delimiter contains the positions strictly between its first and
    /// last byte; one without (a Python suite) contains its start and end too.
    pub enclosing_block: Option<Range<usize>>,
    /// How many `@block`s contain the cursor (0 at top level).
    pub block_depth: usize,
    /// The enclosing block (the whole file at top level) contains a syntax error.
    pub has_error: bool,
}

/// A definition found by the language's `tags.scm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The capture name after `definition.`: "function", "method", "class", "interface",
    /// "type", "constant", "module", "macro".
    pub kind: String,
    /// The defined name.
    pub name: String,
    /// The whole definition.
    pub range: Range<usize>,
    /// The name within it.
    pub name_range: Range<usize>,
    /// From the start of the definition's line up to its body (`def f(x):`,
    /// `pub fn f(x: u32) -> u32`, `type T struct`), or to the end of that line when it has no
    /// body (constants always); trimmed, at most [`MAX_SIGNATURE_BYTES`] long.
    pub signature: String,
}

/// Longest [`Definition::signature`], in bytes.
pub const MAX_SIGNATURE_BYTES: usize = 400;

/// What a `context.scm` capture says about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContextKind {
    Comment,
    String,
    Block,
    /// Not a block, but its named children are items (`boundaries` only).
    Items,
}

/// The capture names of `context.scm`, by capture index.
fn context_kinds(query: &Query) -> Vec<Option<ContextKind>> {
    query
        .capture_names()
        .iter()
        .map(|name| match *name {
            "comment" => Some(ContextKind::Comment),
            "string" => Some(ContextKind::String),
            "block" => Some(ContextKind::Block),
            "items" => Some(ContextKind::Items),
            _ => None,
        })
        .collect()
}

/// Runs `context.scm` over the nodes intersecting `range` and returns the captured nodes.
fn context_nodes<'t>(
    tree: &'t SyntaxTree,
    src: &str,
    range: Range<usize>,
) -> Vec<(ContextKind, Node<'t>)> {
    let Ok(query) = tree.language().query(QueryKind::Context) else {
        return Vec::new();
    };
    let kinds = context_kinds(query);
    let mut cursor = QueryCursor::new();
    cursor.set_byte_range(range);
    let mut out = Vec::new();
    let mut captures = cursor.captures(query, tree.tree().root_node(), src.as_bytes());
    while let Some((m, i)) = captures.next() {
        let capture = m.captures()[*i];
        if let Some(Some(kind)) = kinds.get(capture.index as usize) {
            out.push((*kind, capture.node));
        }
    }
    out
}

/// The node's text, or "" when the text does not match the tree.
fn node_text<'s>(src: &'s str, node: Node<'_>) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// Whether a captured node contains `byte`, in the sense documented on [`CursorInfo`].
fn contains(src: &str, kind: ContextKind, node: Node<'_>, byte: usize) -> bool {
    let (start, end) = (node.start_byte(), node.end_byte());
    if start < byte && byte < end {
        return true;
    }
    let text = node_text(src, node);
    match kind {
        // A line comment runs to the end of the line: its end is still inside.
        ContextKind::Comment => {
            byte == end
                && start < end
                && !(text.ends_with('\n') || text.ends_with("*/") || text.ends_with("-->"))
        }
        // An unterminated string (closing quote missing) still contains its end.
        ContextKind::String => byte == end && start < end && node.has_error(),
        // A block without a closing delimiter (a Python suite) contains both ends.
        ContextKind::Block => {
            let closed = matches!(text.as_bytes().last(), Some(b'}' | b']' | b')'));
            !closed && start <= byte && byte <= end
        }
        ContextKind::Items => false,
    }
}

/// Whether `node` intersects `range`; a zero-width node (MISSING) intersects a range that
/// contains or touches its position.
fn intersects(node: Node<'_>, range: &Range<usize>) -> bool {
    let (start, end) = (node.start_byte(), node.end_byte());
    if start == end || range.start == range.end {
        start <= range.end && range.start <= end
    } else {
        start < range.end && range.start < end
    }
}

impl SyntaxTree {
    /// The syntactic situation at `byte` (clamped to `src` and floored to a char boundary).
    pub fn cursor_info(&self, src: &str, byte: usize) -> CursorInfo {
        let byte = src.floor_char_boundary(byte);
        let nodes = context_nodes(self, src, byte.saturating_sub(1)..byte.saturating_add(1));
        let mut innermost: Option<(ContextKind, Node<'_>)> = None;
        let mut block: Option<Node<'_>> = None;
        let mut block_depth = 0;
        for &(kind, node) in &nodes {
            if !contains(src, kind, node, byte) {
                continue;
            }
            let smaller = |other: Option<Node<'_>>| match other {
                None => true,
                Some(o) => node.byte_range().len() <= o.byte_range().len(),
            };
            if smaller(innermost.map(|(_, n)| n)) {
                innermost = Some((kind, node));
            }
            if kind == ContextKind::Block {
                block_depth += 1;
                if smaller(block) {
                    block = Some(node);
                }
            }
        }
        let innermost_kind = innermost.map(|(kind, _)| kind);
        let in_string = match innermost_kind {
            Some(ContextKind::String) => true,
            Some(ContextKind::Comment) => false,
            _ => self.tree().root_node().has_error() && in_unterminated_string(self, src, byte),
        };
        CursorInfo {
            in_comment: innermost_kind == Some(ContextKind::Comment),
            in_string,
            enclosing_block: block.map(|n| n.byte_range()),
            block_depth,
            has_error: block.unwrap_or(self.tree().root_node()).has_error(),
        }
    }

    /// Sorted, deduplicated byte offsets of line starts in `src` where a statement, definition
    /// or top-level item begins, for items whose first byte lies in `range`.
    ///
    /// An item is a named child of the root, of an `@block` or of an `@items` node (a statement
    /// list that is not a block: a `case` body, a Go `statement_list`) that is the first thing on its
    /// line (only indentation before it); the offset returned is that line's start, so cutting
    /// there keeps the indentation with the item.
    pub fn boundaries(&self, src: &str, range: Range<usize>) -> Vec<usize> {
        let start = src.floor_char_boundary(range.start);
        let end = src.floor_char_boundary(range.end.max(start));
        let range = start..end;
        let mut containers = vec![self.tree().root_node()];
        containers.extend(
            context_nodes(self, src, range.clone())
                .into_iter()
                .filter(|(kind, _)| matches!(kind, ContextKind::Block | ContextKind::Items))
                .map(|(_, node)| node),
        );
        let mut out = Vec::new();
        for container in containers {
            let mut child = container.first_named_child_for_byte(range.start);
            while let Some(node) = child {
                let at = node.start_byte();
                if at >= range.end {
                    break;
                }
                if at >= range.start
                    && !node.is_error()
                    && !node.is_missing()
                    && let Some(line_start) = line_start_if_first(src, at)
                {
                    out.push(line_start);
                }
                child = node.next_named_sibling();
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The definitions `tags.scm` finds in the document, in source order.
    ///
    /// Where several patterns capture the same name node, the pattern written first in
    /// `tags.scm` wins (so a `method` pattern placed before the `function` one takes
    /// precedence).
    pub fn definitions(&self, src: &str) -> Vec<Definition> {
        self.definitions_in(src, 0..src.len())
    }

    /// [`Self::definitions`] restricted to definitions that intersect `range` (cheap on big
    /// files when the range is small).
    pub fn definitions_in(&self, src: &str, range: Range<usize>) -> Vec<Definition> {
        let Ok(query) = self.language().query(QueryKind::Tags) else {
            return Vec::new();
        };
        let Some(name_index) = query.capture_index_for_name("name") else {
            return Vec::new();
        };
        let kinds: Vec<Option<&str>> = query
            .capture_names()
            .iter()
            .map(|name| name.strip_prefix("definition."))
            .collect();
        let root = self.tree().root_node();
        let mut found: Vec<(usize, Node<'_>, Node<'_>, &str)> = Vec::new();
        let mut cursor = QueryCursor::new();
        cursor.set_byte_range(range.start.min(src.len())..range.end.min(src.len()));
        let mut matches = cursor.matches(query, root, src.as_bytes());
        while let Some(m) = matches.next() {
            let mut name = None;
            let mut definition = None;
            for capture in m.captures() {
                if capture.index == name_index {
                    name = Some(capture.node);
                } else if let Some(Some(kind)) = kinds.get(capture.index as usize) {
                    definition = Some((capture.node, *kind));
                }
            }
            if let (Some(name), Some((node, kind))) = (name, definition) {
                found.push((m.pattern_index, node, name, kind));
            }
        }
        // Earliest pattern first for each name node, then source order.
        found.sort_by_key(|(pattern, node, name, _)| {
            (
                name.start_byte(),
                name.end_byte(),
                *pattern,
                node.start_byte(),
            )
        });
        found.dedup_by_key(|(_, _, name, _)| name.byte_range());
        found.sort_by_key(|(_, node, name, _)| (node.start_byte(), name.start_byte()));

        // All `@block` ranges in start order, computed only if a definition has no body field.
        let mut blocks: Option<Vec<Range<usize>>> = None;
        let mut out = Vec::with_capacity(found.len());
        for (_, node, name, kind) in found {
            let Some(name_text) = src.get(name.byte_range()) else {
                continue;
            };
            let body_start = body_field_start(node).or_else(|| {
                // Otherwise the first block after the name (`type T struct {`), unless that is
                // a constant's value.
                if kind == "constant" {
                    return None;
                }
                let blocks = blocks.get_or_insert_with(|| {
                    let mut b: Vec<Range<usize>> = context_nodes(self, src, 0..src.len())
                        .into_iter()
                        .filter(|(kind, _)| *kind == ContextKind::Block)
                        .map(|(_, node)| node.byte_range())
                        .collect();
                    b.sort_by_key(|b| b.start);
                    b
                });
                let i = blocks.partition_point(|b| b.start < name.end_byte());
                blocks
                    .get(i)
                    .filter(|b| b.start < node.end_byte())
                    .map(|b| b.start)
            });
            out.push(Definition {
                kind: kind.to_owned(),
                name: name_text.to_owned(),
                range: node.byte_range(),
                name_range: name.byte_range(),
                signature: signature(src, node, body_start),
            });
        }
        out
    }

    /// How many syntax errors intersect `range`: outermost `ERROR` nodes plus `MISSING` nodes
    /// (a zero-width MISSING node counts when it touches `range`).
    pub fn error_count_in(&self, range: Range<usize>) -> usize {
        let mut count = 0;
        visit_errors(self.tree().root_node(), &range, |_| {
            count += 1;
            ControlFlow::Continue(())
        });
        count
    }
}

/// Calls `f` on the outermost ERROR nodes and the MISSING nodes intersecting `range`, in
/// document order, until it breaks.
fn visit_errors<'t>(
    root: Node<'t>,
    range: &Range<usize>,
    mut f: impl FnMut(Node<'t>) -> ControlFlow<()>,
) {
    if !root.has_error() {
        return;
    }
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        let descend = if !intersects(node, range) {
            false
        } else if node.is_error() || node.is_missing() {
            if f(node).is_break() {
                return;
            }
            false
        } else {
            node.has_error()
        };
        if descend && cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

/// The start of the line holding `at`, if only spaces and tabs precede `at` on that line.
fn line_start_if_first(src: &str, at: usize) -> Option<usize> {
    let before = src.as_bytes().get(..at)?;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    before[line_start..]
        .iter()
        .all(|&b| b == b' ' || b == b'\t')
        .then_some(line_start)
}

/// Where the definition's body starts, from the `body` field of the node or of its `value`
/// (`const f = () => {..}`).
fn body_field_start(node: Node<'_>) -> Option<usize> {
    node.child_by_field_name("body")
        .or_else(|| {
            node.child_by_field_name("value")
                .and_then(|value| value.child_by_field_name("body"))
        })
        .map(|body| body.start_byte())
}

/// The definition's text up to `body_start`, or its first line; see [`Definition::signature`].
/// It starts at the start of the definition's line, so keywords outside the captured node
/// (`type` before a Go `type_spec`, `const` before a JS declarator) are kept.
fn signature(src: &str, node: Node<'_>, body_start: Option<usize>) -> String {
    let end = body_start
        .filter(|&start| start > node.start_byte())
        .unwrap_or_else(|| {
            let text = node_text(src, node);
            node.start_byte() + text.find('\n').unwrap_or(text.len())
        });
    let start = src
        .get(..node.start_byte())
        .map_or(node.start_byte(), |before| {
            before.rfind('\n').map_or(0, |i| i + 1)
        });
    let text = src.get(start..end).unwrap_or("").trim();
    text[..text.floor_char_boundary(MAX_SIGNATURE_BYTES)]
        .trim_end()
        .to_owned()
}

/// Whether `byte` follows an opening quote that the parser could not close (`print("hel`),
/// which tree-sitter reports as an ERROR rather than a string. Looks only at the text between
/// the first ERROR node on the cursor's line (or the line start, if it starts earlier) and
/// `byte`.
fn in_unterminated_string(tree: &SyntaxTree, src: &str, byte: usize) -> bool {
    let line_start = src
        .get(..byte)
        .map_or(0, |before| before.rfind('\n').map_or(0, |i| i + 1));
    let mut error_start = None;
    visit_errors(tree.tree().root_node(), &(line_start..byte), |node| {
        if node.is_error() {
            error_start = Some(node.start_byte());
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let Some(error_start) = error_start else {
        return false;
    };
    let Some(text) = src.get(error_start.max(line_start)..byte) else {
        return false;
    };
    let quotes: &[char] = match tree.language() {
        Language::Rust | Language::Json => &['"'],
        Language::JavaScript | Language::TypeScript | Language::Tsx | Language::Go => {
            &['"', '\'', '`']
        }
        Language::Python
        | Language::Java
        | Language::C
        | Language::Cpp
        | Language::Toml
        | Language::Bash => &['"', '\''],
    };
    let mut open: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match open {
            Some(_) if c == '\\' => {
                chars.next();
            }
            Some(q) if c == q => open = None,
            Some(_) => {}
            None if quotes.contains(&c) => open = Some(c),
            None => {}
        }
    }
    open.is_some()
}
