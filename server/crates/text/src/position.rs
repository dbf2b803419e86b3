//! Plain position types: LSP-style `Position`/`Range` with their encoding, and tree-sitter-style
//! `Point`. No conversion happens here; `Document` does it.

use std::fmt;

/// How the `character` of a [`Position`] counts: the LSP `PositionEncodingKind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PositionEncoding {
    /// UTF-8 code units (bytes), LSP `"utf-8"`.
    Utf8,
    /// UTF-16 code units, LSP `"utf-16"`: the default every client supports.
    #[default]
    Utf16,
    /// Unicode scalar values (Rust `char`s), LSP `"utf-32"`.
    Utf32,
}

impl PositionEncoding {
    /// Parses an LSP `PositionEncodingKind` (`"utf-8"`, `"utf-16"`, `"utf-32"`).
    pub fn from_lsp(s: &str) -> Option<Self> {
        match s {
            "utf-8" => Some(Self::Utf8),
            "utf-16" => Some(Self::Utf16),
            "utf-32" => Some(Self::Utf32),
            _ => None,
        }
    }

    /// The LSP `PositionEncodingKind` string.
    pub fn as_lsp(&self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf16 => "utf-16",
            Self::Utf32 => "utf-32",
        }
    }

    /// Picks the encoding to use from the ones a client offers
    /// (`general.positionEncodings`): UTF-8 when offered, since it is the text's own encoding,
    /// else UTF-16, which LSP requires every server to support.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Self {
        if offered.into_iter().any(|s| s == "utf-8") {
            Self::Utf8
        } else {
            Self::Utf16
        }
    }
}

impl fmt::Display for PositionEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_lsp())
    }
}

/// An LSP position: zero-based line and zero-based `character` counted in some
/// [`PositionEncoding`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl Position {
    pub const fn new(line: u32, character: u32) -> Self {
        Self { line, character }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, character {}", self.line, self.character)
    }
}

/// An LSP range: `start` inclusive, `end` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

impl Range {
    pub const fn new(start: Position, end: Position) -> Self {
        Self { start, end }
    }
}

/// A tree-sitter point: `row` counts `'\n'` characters before the byte (tree-sitter's own
/// convention, which also matches LSP lines unless the text has a lone `'\r'` line break),
/// `column` is the number of bytes since the start of that row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    pub row: usize,
    /// In bytes.
    pub column: usize,
}

impl Point {
    pub const fn new(row: usize, column: usize) -> Self {
        Self { row, column }
    }

    /// The point reached after `text` is written starting at `self`.
    pub fn advance(self, text: &str) -> Self {
        match text.rfind('\n') {
            Some(last) => Point {
                row: self.row + text.bytes().filter(|&b| b == b'\n').count(),
                column: text.len() - last - 1,
            },
            None => Point {
                row: self.row,
                column: self.column + text.len(),
            },
        }
    }
}
