//! Errors for positions and edits that do not fit the document. Messages are written for the
//! user who reads them in the editor's log.

use crate::Position;

/// A position, range or byte edit that does not fit the document it was applied to.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// The line is past the last line of the document (and is not the line just after it).
    #[error(
        "line {line} is past the end of the document, which has {lines} lines (lines count from 0)"
    )]
    LineOutOfRange { line: u32, lines: u32 },
    /// The end of a range comes before its start.
    #[error("the range ends ({end}) before it starts ({start})")]
    RangeInverted { start: Position, end: Position },
    /// A byte offset is past the end of the document.
    #[error("byte offset {byte} is past the end of the document ({len} bytes)")]
    ByteOutOfRange { byte: usize, len: usize },
    /// The end of a byte range comes before its start.
    #[error("the byte range ends at {end} before it starts at {start}")]
    ByteRangeInverted { start: usize, end: usize },
    /// A byte offset falls inside a multi-byte UTF-8 character.
    #[error("byte offset {byte} is inside a multi-byte character")]
    NotCharBoundary { byte: usize },
}
