//! `moat-syntax`: what moat knows about source code as syntax, through tree-sitter.
//!
//! Owns: the language registry (grammars and the query files under `grammars/`), incremental
//! parsing of documents, and the syntactic questions the completion pipeline asks — is the
//! cursor in a comment or string, which block encloses it, where do statements begin, what does
//! a file define, how many syntax errors does a range hold.
//! Must not: do IO, know about models, prompts or LSP types, or work in anything but byte
//! offsets into UTF-8 `&str` (positions are converted in `moat-text`).
//!
//! ```
//! use moat_syntax::{Language, SyntaxTree, TextEdit};
//!
//! let old = "def f(x):\n    return x\n";
//! let mut tree = SyntaxTree::parse(Language::Python, old).unwrap();
//! let edit = TextEdit::replace(old, 22..22, " + 1");
//! let new = "def f(x):\n    return x + 1\n";
//! tree.edit(&edit);
//! assert!(tree.reparse(new));
//! assert_eq!(tree.definitions(new)[0].signature, "def f(x):");
//! assert_eq!(tree.cursor_info(new, 20).block_depth, 1);
//! ```

mod language;
mod query;
mod tree;

#[cfg(test)]
mod query_tests;

pub use language::Language;
pub use query::{CursorInfo, Definition, MAX_SIGNATURE_BYTES};
pub use tree::{MAX_PARSE_BYTES, PARSE_TIMEOUT, SyntaxTree, TextEdit};

/// Errors of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// A query file embedded from `grammars/` does not compile against its grammar.
    #[error("grammars/{dir}/{file}:{row}:{column} ({language} grammar): {message}")]
    Query {
        language: &'static str,
        dir: &'static str,
        file: &'static str,
        row: usize,
        column: usize,
        message: String,
    },
}
