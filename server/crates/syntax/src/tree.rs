//! Parsing: a document's syntax tree, kept up to date incrementally as the document is edited.
//!
//! Owns: [`SyntaxTree`], [`TextEdit`], the per-thread parser and the guards that keep a parse
//! bounded ([`MAX_PARSE_BYTES`], [`PARSE_TIMEOUT`]).
//! Must not: convert positions (edits arrive in bytes from the `text` layer) or keep a copy of
//! the document text — callers pass the current text to every call.

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use tree_sitter::{InputEdit, ParseOptions, Parser, Point, Tree};

use crate::Language;

/// Documents larger than this are not parsed; the pipeline then works without syntax.
pub const MAX_PARSE_BYTES: usize = 8 * 1024 * 1024;

/// A parse (fresh or incremental) that runs longer than this is abandoned.
///
/// A first parse runs at a few MB/s (an 8 MiB file takes seconds), so callers should do it
/// off the request path; a reparse after a small edit takes milliseconds.
pub const PARSE_TIMEOUT: Duration = Duration::from_secs(5);

/// One edit of a document, in bytes and (row, byte column) points, as tree-sitter needs it.
///
/// `start..old_end` is the replaced range in the old text; `start..new_end` the inserted text in
/// the new one. Columns count bytes from the start of the line, rows count `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextEdit {
    pub start_byte: usize,
    pub old_end_byte: usize,
    pub new_end_byte: usize,
    pub start_point: (usize, usize),
    pub old_end_point: (usize, usize),
    pub new_end_point: (usize, usize),
}

impl TextEdit {
    /// The edit that replaces `old[range]` with `new_text`, points computed from `old`.
    ///
    /// A convenience for callers (and tests) that hold the old text; `range` is clamped to
    /// `old` and to char boundaries.
    pub fn replace(old: &str, range: std::ops::Range<usize>, new_text: &str) -> TextEdit {
        let start = old.floor_char_boundary(range.start);
        let old_end = old.floor_char_boundary(range.end.max(start));
        let start_point = point_after((0, 0), &old.as_bytes()[..start]);
        let old_end_point = point_after(start_point, &old.as_bytes()[start..old_end]);
        let new_end_point = point_after(start_point, new_text.as_bytes());
        TextEdit {
            start_byte: start,
            old_end_byte: old_end,
            new_end_byte: start + new_text.len(),
            start_point,
            old_end_point,
            new_end_point,
        }
    }
}

/// The point reached from `from` after `bytes`.
fn point_after(from: (usize, usize), bytes: &[u8]) -> (usize, usize) {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last) => (from.0 + newlines, bytes.len() - last - 1),
        None => (from.0, from.1 + bytes.len()),
    }
}

fn point((row, column): (usize, usize)) -> Point {
    Point { row, column }
}

/// A parsed document: a tree-sitter tree and the language it was parsed as.
///
/// The tree does not hold the text; every query takes the text it was parsed from. Passing other
/// text never panics but gives meaningless answers. `SyntaxTree` is `Send`, and cheap to clone
/// (tree-sitter trees are reference counted), so a snapshot can go to a worker thread.
#[derive(Debug, Clone)]
pub struct SyntaxTree {
    tree: Tree,
    language: Language,
}

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Parses `text`, reusing `old` (already edited to match `text`) when given.
fn run_parser(
    language: Language,
    text: &str,
    old: Option<&Tree>,
    timeout: Duration,
) -> Option<Tree> {
    if text.len() > MAX_PARSE_BYTES {
        return None;
    }
    PARSER.with(|cell| {
        // Re-entrancy is impossible (the parser calls only our closures), but stay panic-free.
        let mut parser = cell.try_borrow_mut().ok()?;
        parser.set_language(&language.grammar()).ok()?;
        let deadline = Instant::now() + timeout;
        let mut progress = |_: &tree_sitter::ParseState| {
            if Instant::now() >= deadline {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let bytes = text.as_bytes();
        let mut read = |offset: usize, _: Point| bytes.get(offset..).unwrap_or_default();
        let options = ParseOptions::new().progress_callback(&mut progress);
        let tree = parser.parse_with_options(&mut read, old, Some(options));
        if tree.is_none() {
            // A cancelled parse would otherwise be resumed by the next call.
            parser.reset();
        }
        tree
    })
}

impl SyntaxTree {
    /// Parses `text` from scratch. `None` when the text is over [`MAX_PARSE_BYTES`] or the
    /// parse ran past [`PARSE_TIMEOUT`].
    pub fn parse(language: Language, text: &str) -> Option<SyntaxTree> {
        let tree = run_parser(language, text, None, PARSE_TIMEOUT)?;
        Some(SyntaxTree { tree, language })
    }

    /// Records an edit of the document, so that the next [`reparse`](Self::reparse) can reuse
    /// the unchanged parts of the tree. Call it once per edit, in order, then `reparse` once.
    pub fn edit(&mut self, edit: &TextEdit) {
        self.tree.edit(&InputEdit {
            start_byte: edit.start_byte,
            old_end_byte: edit.old_end_byte,
            new_end_byte: edit.new_end_byte,
            start_position: point(edit.start_point),
            old_end_position: point(edit.old_end_point),
            new_end_position: point(edit.new_end_point),
        });
    }

    /// Brings the tree up to date with `text` after one or more [`edit`](Self::edit)s.
    ///
    /// Returns `false` when the text is now over [`MAX_PARSE_BYTES`] or the parse timed out; the
    /// tree is then stale and the caller should drop it (and may try [`parse`](Self::parse)
    /// again later).
    pub fn reparse(&mut self, text: &str) -> bool {
        match run_parser(self.language, text, Some(&self.tree), PARSE_TIMEOUT) {
            Some(tree) => {
                self.tree = tree;
                true
            }
            None => false,
        }
    }

    /// The language the tree was parsed as.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The tree-sitter tree, for queries this crate does not offer.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The tree as an S-expression (named nodes only); for tests and debugging.
    pub fn to_sexp(&self) -> String {
        self.tree.root_node().to_sexp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_tree_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SyntaxTree>();
    }

    #[test]
    fn replace_computes_points() {
        let old = "ab\ncd\nef";
        let edit = TextEdit::replace(old, 4..7, "X\nYZ");
        assert_eq!(edit.start_byte, 4);
        assert_eq!(edit.old_end_byte, 7);
        assert_eq!(edit.new_end_byte, 8);
        assert_eq!(edit.start_point, (1, 1));
        assert_eq!(edit.old_end_point, (2, 1));
        assert_eq!(edit.new_end_point, (2, 2));
    }

    #[test]
    fn timed_out_parse_returns_none_and_the_parser_recovers() {
        let text = "def f(x):\n    return x\n".repeat(20_000);
        assert!(run_parser(Language::Python, &text, None, Duration::ZERO).is_none());
        let tree = run_parser(Language::Python, "x = 1\n", None, PARSE_TIMEOUT).unwrap();
        assert_eq!(
            tree.root_node().to_sexp(),
            SyntaxTree::parse(Language::Python, "x = 1\n")
                .unwrap()
                .to_sexp()
        );
    }

    #[test]
    fn oversized_text_is_not_parsed() {
        let big = "x = 1\n".repeat(MAX_PARSE_BYTES / 6 + 1);
        assert!(big.len() > MAX_PARSE_BYTES);
        assert!(SyntaxTree::parse(Language::Python, &big).is_none());
        let mut tree = SyntaxTree::parse(Language::Python, "x = 1\n").unwrap();
        tree.edit(&TextEdit::replace("x = 1\n", 6..6, &big));
        assert!(!tree.reparse(&format!("x = 1\n{big}")));
    }
}
