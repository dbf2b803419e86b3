//! A naive, obviously-correct model of LSP lines and positions over a `&str`, to check
//! `Document` against.

use moat_text::{Point, Position, PositionEncoding};

pub struct Naive<'a> {
    pub text: &'a str,
    /// Per line: byte range of its content, without the line break.
    pub lines: Vec<(usize, usize)>,
}

impl<'a> Naive<'a> {
    pub fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut lines = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => {
                    lines.push((start, i));
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    lines.push((start, i));
                    i += if bytes.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    start = i;
                }
                _ => i += 1,
            }
        }
        lines.push((start, bytes.len()));
        Self { text, lines }
    }

    pub fn char_boundaries(&self) -> Vec<usize> {
        (0..=self.text.len())
            .filter(|&b| self.text.is_char_boundary(b))
            .collect()
    }

    pub fn splits_crlf(&self, byte: usize) -> bool {
        byte > 0 && self.text[..byte].ends_with('\r') && self.text[byte..].starts_with('\n')
    }

    pub fn offset(&self, pos: Position, enc: PositionEncoding) -> Option<usize> {
        let line = pos.line as usize;
        if line == self.lines.len() {
            return Some(self.text.len());
        }
        let &(start, end) = self.lines.get(line)?;
        let mut acc = 0;
        for (i, c) in self.text[start..end].char_indices() {
            if acc + units(c, enc) > pos.character as usize {
                return Some(start + i);
            }
            acc += units(c, enc);
        }
        Some(end)
    }

    pub fn position(&self, byte: usize, enc: PositionEncoding) -> Position {
        let mut byte = byte.min(self.text.len());
        while !self.text.is_char_boundary(byte) {
            byte -= 1;
        }
        if self.splits_crlf(byte) {
            byte -= 1;
        }
        let line = self.lines.iter().rposition(|&(s, _)| s <= byte).unwrap();
        let start = self.lines[line].0;
        let character = self.text[start..byte]
            .chars()
            .map(|c| units(c, enc))
            .sum::<usize>();
        Position::new(line as u32, character as u32)
    }

    /// Tree-sitter point: rows count '\n' only.
    pub fn point(&self, byte: usize) -> Point {
        let before = &self.text[..byte];
        let row = before.matches('\n').count();
        let column = byte - before.rfind('\n').map_or(0, |i| i + 1);
        Point::new(row, column)
    }
}

pub fn units(c: char, enc: PositionEncoding) -> usize {
    match enc {
        PositionEncoding::Utf8 => c.len_utf8(),
        PositionEncoding::Utf16 => c.len_utf16(),
        PositionEncoding::Utf32 => 1,
    }
}

pub const ENCODINGS: [PositionEncoding; 3] = [
    PositionEncoding::Utf8,
    PositionEncoding::Utf16,
    PositionEncoding::Utf32,
];
