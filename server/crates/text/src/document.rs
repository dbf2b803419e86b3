//! One open document: its text as a rope, version and language, with conversions between byte
//! offsets, LSP positions and tree-sitter points, and incremental edits. No IO.

use std::ops;

use ropey::Rope;

use crate::{Point, Position, PositionEncoding, Range, TextError};

/// A byte-level description of an applied edit, enough for tree-sitter's `InputEdit`.
///
/// `start_byte..old_end_byte` is the replaced span in the old text,
/// `start_byte..new_end_byte` the inserted text in the new one. Points follow tree-sitter's
/// convention (see [`Point`]): `old_end_point` is where the old span ended in the old text,
/// `new_end_point` where the inserted text ends in the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edit {
    pub start_byte: usize,
    pub old_end_byte: usize,
    pub new_end_byte: usize,
    pub start_point: Point,
    pub old_end_point: Point,
    pub new_end_point: Point,
}

/// An open document.
///
/// Lines are split at `"\n"`, `"\r\n"` and `"\r"` only. A text with *n* line breaks has
/// *n + 1* lines, so `"a\n"` has two lines: `"a"` and an empty one.
#[derive(Clone, Debug)]
pub struct Document {
    rope: Rope,
    version: i32,
    language_id: String,
    /// How many `'\r'` are not followed by `'\n'`. While zero (nearly always), tree-sitter rows
    /// and LSP lines agree and [`Document::point`] is O(log n).
    lone_crs: usize,
}

impl Document {
    pub fn new(text: &str, version: i32, language_id: impl Into<String>) -> Self {
        Self {
            rope: Rope::from_str(text),
            version,
            language_id: language_id.into(),
            lone_crs: count_lone_crs(text),
        }
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn set_version(&mut self, version: i32) {
        self.version = version;
    }

    pub fn language_id(&self) -> &str {
        &self.language_id
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// The whole text. O(n): prefer [`Document::slice`] or [`Document::rope`].
    pub fn text(&self) -> String {
        self.rope.to_string()
    }

    pub fn len_bytes(&self) -> usize {
        self.rope.len_bytes()
    }

    /// Number of lines: line breaks + 1 (an empty document has one empty line).
    pub fn len_lines(&self) -> usize {
        self.rope.len_lines()
    }

    /// The text in `bytes`. Both ends are clamped to the document and rounded down to a char
    /// boundary; an inverted range gives an empty string. Never panics.
    pub fn slice(&self, bytes: ops::Range<usize>) -> String {
        let start = self.floor_char_boundary(bytes.start);
        let end = self.floor_char_boundary(bytes.end).max(start);
        self.rope.byte_slice(start..end).to_string()
    }

    /// `byte` clamped to the document length and rounded down to the start of its char.
    pub fn floor_char_boundary(&self, byte: usize) -> usize {
        let byte = byte.min(self.len_bytes());
        self.rope.char_to_byte(self.rope.byte_to_char(byte))
    }

    /// Whether `byte` is within the document and on a char boundary.
    pub fn is_char_boundary(&self, byte: usize) -> bool {
        byte <= self.len_bytes() && self.floor_char_boundary(byte) == byte
    }

    /// The byte offset of an LSP position.
    ///
    /// - A line past the end is an error, except `line == len_lines()`, which means the end of
    ///   the document (some clients address "just after the last line" that way).
    /// - A `character` past the end of its line clamps to the line end, before its line break
    ///   (LSP: "defaults back to the line length").
    /// - A `character` inside a char (inside a UTF-16 surrogate pair, or inside a multi-byte
    ///   UTF-8 sequence) rounds down to the start of that char.
    pub fn offset(&self, pos: Position, enc: PositionEncoding) -> Result<usize, TextError> {
        let lines = self.len_lines();
        let line = pos.line as usize;
        if line >= lines {
            return if line == lines {
                Ok(self.len_bytes())
            } else {
                Err(TextError::LineOutOfRange {
                    line: pos.line,
                    lines: saturating_u32(lines),
                })
            };
        }
        let (start, end) = self.line_content_chars(line);
        let character = pos.character as usize;
        let char_idx = match enc {
            PositionEncoding::Utf8 => {
                let start_byte = self.rope.char_to_byte(start);
                let end_byte = self.rope.char_to_byte(end);
                self.rope
                    .byte_to_char(start_byte.saturating_add(character).min(end_byte))
            }
            PositionEncoding::Utf16 => {
                let start_cu = self.rope.char_to_utf16_cu(start);
                let end_cu = self.rope.char_to_utf16_cu(end);
                self.rope
                    .utf16_cu_to_char(start_cu.saturating_add(character).min(end_cu))
            }
            PositionEncoding::Utf32 => start.saturating_add(character).min(end),
        };
        Ok(self.rope.char_to_byte(char_idx))
    }

    /// The LSP position of a byte offset. `byte` is clamped to the document length and rounded
    /// down to a char boundary; a byte between the `'\r'` and `'\n'` of a `"\r\n"` (which no
    /// position can name) rounds down to the `'\r'`, the end of its line.
    pub fn position(&self, byte: usize, enc: PositionEncoding) -> Position {
        let char_idx = self.floor_line_break(self.rope.byte_to_char(byte.min(self.len_bytes())));
        let line = self.rope.char_to_line(char_idx);
        let start = self.rope.line_to_char(line);
        let character = match enc {
            PositionEncoding::Utf8 => {
                self.rope.char_to_byte(char_idx) - self.rope.char_to_byte(start)
            }
            PositionEncoding::Utf16 => {
                self.rope.char_to_utf16_cu(char_idx) - self.rope.char_to_utf16_cu(start)
            }
            PositionEncoding::Utf32 => char_idx - start,
        };
        Position {
            line: saturating_u32(line),
            character: saturating_u32(character),
        }
    }

    /// The tree-sitter point of a byte offset (clamped and rounded down to a char boundary).
    ///
    /// O(log n), except in a document containing a lone `'\r'` line break, where tree-sitter's
    /// rows (which count `'\n'` only) differ from LSP lines and this scans the text before
    /// `byte`.
    pub fn point(&self, byte: usize) -> Point {
        let byte = self.floor_char_boundary(byte);
        if self.lone_crs > 0 {
            return self.point_by_scan(byte);
        }
        // Without lone '\r', LSP lines are exactly the '\n'-separated rows. The byte between
        // '\r' and '\n' is on the row of the '\r'.
        let char_idx = self.rope.byte_to_char(byte);
        let row = self.rope.char_to_line(self.floor_line_break(char_idx));
        Point {
            row,
            column: byte - self.rope.line_to_byte(row),
        }
    }

    /// Applies one LSP content change: `range: None` replaces the whole text. Returns the
    /// byte-level edit. On error the document is unchanged.
    pub fn apply_change(
        &mut self,
        range: Option<Range>,
        new_text: &str,
        enc: PositionEncoding,
    ) -> Result<Edit, TextError> {
        let Some(range) = range else {
            return Ok(self.replace_all(new_text));
        };
        if range.end < range.start {
            return Err(TextError::RangeInverted {
                start: range.start,
                end: range.end,
            });
        }
        let start = self.offset(range.start, enc)?;
        let end = self.offset(range.end, enc)?;
        self.replace(start..end, new_text)
    }

    /// Replaces the bytes in `bytes` by `new_text`: O(edit size + log n). Both ends must be
    /// char boundaries within the document (the byte between `'\r'` and `'\n'` is one).
    /// On error the document is unchanged.
    pub fn replace(&mut self, bytes: ops::Range<usize>, new_text: &str) -> Result<Edit, TextError> {
        let ops::Range { start, end } = bytes;
        let len = self.len_bytes();
        if start > end {
            return Err(TextError::ByteRangeInverted { start, end });
        }
        if end > len {
            return Err(TextError::ByteOutOfRange { byte: end, len });
        }
        for byte in [start, end] {
            if !self.is_char_boundary(byte) {
                return Err(TextError::NotCharBoundary { byte });
            }
        }

        let start_point = self.point(start);
        let old_end_point = self
            .rope
            .byte_slice(start..end)
            .chunks()
            .fold(start_point, Point::advance);
        let lone_crs_before = self.lone_crs_in(start, end);

        let start_char = self.rope.byte_to_char(start);
        let end_char = self.rope.byte_to_char(end);
        self.rope.remove(start_char..end_char);
        self.rope.insert(start_char, new_text);

        let new_end = start + new_text.len();
        self.lone_crs = self.lone_crs - lone_crs_before + self.lone_crs_in(start, new_end);
        Ok(Edit {
            start_byte: start,
            old_end_byte: end,
            new_end_byte: new_end,
            start_point,
            old_end_point,
            new_end_point: start_point.advance(new_text),
        })
    }

    /// Replaces the whole text: O(n).
    pub fn replace_all(&mut self, new_text: &str) -> Edit {
        let old_end_byte = self.len_bytes();
        let old_end_point = self.point(old_end_byte);
        self.rope = Rope::from_str(new_text);
        self.lone_crs = count_lone_crs(new_text);
        Edit {
            start_byte: 0,
            old_end_byte,
            new_end_byte: new_text.len(),
            start_point: Point::default(),
            old_end_point,
            new_end_point: Point::default().advance(new_text),
        }
    }

    /// Byte offset of the start of `line`; a line past the end clamps to the document length.
    pub fn line_start(&self, line: usize) -> usize {
        if line < self.len_lines() {
            self.rope.line_to_byte(line)
        } else {
            self.len_bytes()
        }
    }

    /// The bytes of `line` without its line break; a line past the end gives the empty range at
    /// the document end.
    pub fn line_content(&self, line: usize) -> ops::Range<usize> {
        if line >= self.len_lines() {
            let len = self.len_bytes();
            return len..len;
        }
        let (start, end) = self.line_content_chars(line);
        self.rope.char_to_byte(start)..self.rope.char_to_byte(end)
    }

    /// The line containing `byte` (clamped). A byte between `'\r'` and `'\n'` is on the line of
    /// the `'\r'`.
    pub fn line_of(&self, byte: usize) -> usize {
        let char_idx = self.rope.byte_to_char(byte.min(self.len_bytes()));
        self.rope.char_to_line(self.floor_line_break(char_idx))
    }

    /// Chars `start..end` of `line`'s content, without its line break. `line < len_lines()`.
    fn line_content_chars(&self, line: usize) -> (usize, usize) {
        let start = self.rope.line_to_char(line);
        let mut end = if line + 1 < self.len_lines() {
            self.rope.line_to_char(line + 1)
        } else {
            self.rope.len_chars()
        };
        if end > start && self.rope.char(end - 1) == '\n' {
            end -= 1;
        }
        if end > start && self.rope.char(end - 1) == '\r' {
            end -= 1;
        }
        (start, end)
    }

    /// Moves a char index that splits a `"\r\n"` back onto the `'\r'`.
    fn floor_line_break(&self, char_idx: usize) -> usize {
        let splits_crlf = char_idx > 0
            && char_idx < self.rope.len_chars()
            && self.rope.char(char_idx) == '\n'
            && self.rope.char(char_idx - 1) == '\r';
        if splits_crlf { char_idx - 1 } else { char_idx }
    }

    /// Lone `'\r'`s whose status an edit of `from..to` can change: those in `from - 1..to`,
    /// judged with the byte at `to` as the follower of the last one. O(to - from + log n).
    fn lone_crs_in(&self, from: usize, to: usize) -> usize {
        let first = from.saturating_sub(1);
        let mut bytes = self.rope.bytes_at(first);
        let mut count = 0;
        let mut prev_cr = false;
        for byte in bytes.by_ref().take(to - first) {
            if prev_cr && byte != b'\n' {
                count += 1;
            }
            prev_cr = byte == b'\r';
        }
        if prev_cr && bytes.next() != Some(b'\n') {
            count += 1;
        }
        count
    }

    /// Tree-sitter point by counting `'\n'` before `byte`: O(byte).
    fn point_by_scan(&self, byte: usize) -> Point {
        let mut row = 0;
        let mut row_start = 0;
        let mut chunk_start = 0;
        for chunk in self.rope.byte_slice(..byte).chunks() {
            row += chunk.bytes().filter(|&b| b == b'\n').count();
            if let Some(last) = chunk.rfind('\n') {
                row_start = chunk_start + last + 1;
            }
            chunk_start += chunk.len();
        }
        Point {
            row,
            column: byte - row_start,
        }
    }
}

fn count_lone_crs(text: &str) -> usize {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'))
        .count()
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
