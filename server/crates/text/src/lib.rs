//! `moat-text` owns open documents: their text (a rope), the line index, conversion between
//! byte offsets and LSP positions in UTF-8, UTF-16 and UTF-32, and incremental edits.
//! It must not do IO and must not know LSP crate types: the `lsp` crate converts its types
//! into the plain ones here.
//!
//! **Architecture Invariant:** positions (line, character) are converted only in this crate.
//! Every other crate works on byte offsets into the document's UTF-8 text.
//!
//! Line breaks are what LSP says they are: `"\n"`, `"\r\n"` and `"\r"`. Unicode separators
//! (U+2028, U+0085, ...) are ordinary characters. A document with *n* line breaks has *n + 1*
//! lines; the last one may be empty (the text after a final newline).
//!
//! Edits cost O(edit size + log n), except replacing the whole text.

mod document;
mod error;
mod position;

pub use document::{Document, Edit};
pub use error::TextError;
pub use position::{Point, Position, PositionEncoding, Range};
pub use ropey;
