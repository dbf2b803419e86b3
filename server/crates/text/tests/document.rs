//! Example-based tests of `Document`: positions in every encoding, LSP clamping rules, line
//! breaks and edits.

use moat_text::PositionEncoding::{Utf8, Utf16, Utf32};
use moat_text::{Document, Edit, Point, Position, PositionEncoding, Range, TextError};

fn doc(text: &str) -> Document {
    Document::new(text, 1, "rust")
}

fn pos(line: u32, character: u32) -> Position {
    Position::new(line, character)
}

fn range(l0: u32, c0: u32, l1: u32, c1: u32) -> Option<Range> {
    Some(Range::new(pos(l0, c0), pos(l1, c1)))
}

#[test]
fn encoding_names_round_trip() {
    for enc in [Utf8, Utf16, Utf32] {
        assert_eq!(PositionEncoding::from_lsp(enc.as_lsp()), Some(enc));
    }
    assert_eq!(Utf8.as_lsp(), "utf-8");
    assert_eq!(Utf16.as_lsp(), "utf-16");
    assert_eq!(Utf32.as_lsp(), "utf-32");
    assert_eq!(PositionEncoding::from_lsp("UTF-16"), None);
    assert_eq!(PositionEncoding::default(), Utf16);
    assert_eq!(PositionEncoding::negotiate(["utf-32", "utf-8"]), Utf8);
    assert_eq!(PositionEncoding::negotiate(["utf-32"]), Utf16);
    assert_eq!(PositionEncoding::negotiate([]), Utf16);
}

#[test]
fn metadata() {
    let mut d = Document::new("x", 3, "python");
    assert_eq!(d.version(), 3);
    assert_eq!(d.language_id(), "python");
    d.set_version(4);
    assert_eq!(d.version(), 4);
    assert_eq!(d.rope().len_chars(), 1);
}

#[test]
fn empty_document() {
    let d = doc("");
    assert_eq!(d.len_bytes(), 0);
    assert_eq!(d.len_lines(), 1);
    for enc in [Utf8, Utf16, Utf32] {
        assert_eq!(d.offset(pos(0, 0), enc), Ok(0));
        assert_eq!(d.offset(pos(0, 7), enc), Ok(0));
        assert_eq!(d.offset(pos(1, 0), enc), Ok(0));
        assert_eq!(
            d.offset(pos(2, 0), enc),
            Err(TextError::LineOutOfRange { line: 2, lines: 1 })
        );
        assert_eq!(d.position(0, enc), pos(0, 0));
        assert_eq!(d.position(10, enc), pos(0, 0));
    }
    assert_eq!(d.point(0), Point::new(0, 0));
    assert_eq!(d.slice(0..10), "");
    assert_eq!(d.line_start(0), 0);
    assert_eq!(d.line_start(5), 0);
    assert_eq!(d.line_of(3), 0);
    assert_eq!(d.line_content(0), 0..0);
}

#[test]
fn edit_empty_document() {
    let mut d = doc("");
    let edit = d.apply_change(range(0, 0, 0, 0), "hi\n", Utf16).unwrap();
    assert_eq!(d.text(), "hi\n");
    assert_eq!(
        edit,
        Edit {
            start_byte: 0,
            old_end_byte: 0,
            new_end_byte: 3,
            start_point: Point::new(0, 0),
            old_end_point: Point::new(0, 0),
            new_end_point: Point::new(1, 0),
        }
    );
    assert_eq!(d.len_lines(), 2);
}

#[test]
fn cjk() {
    // 中 and 文 are 3 bytes, 1 UTF-16 unit, 1 char each.
    let d = doc("中文\nx");
    assert_eq!(d.offset(pos(0, 1), Utf16), Ok(3));
    assert_eq!(d.offset(pos(0, 1), Utf32), Ok(3));
    assert_eq!(d.offset(pos(0, 3), Utf8), Ok(3));
    // Inside a multi-byte UTF-8 char: rounds down to its start.
    assert_eq!(d.offset(pos(0, 1), Utf8), Ok(0));
    assert_eq!(d.offset(pos(0, 5), Utf8), Ok(3));
    assert_eq!(d.offset(pos(0, 2), Utf16), Ok(6));
    assert_eq!(d.offset(pos(1, 1), Utf16), Ok(8));
    assert_eq!(d.position(3, Utf8), pos(0, 3));
    assert_eq!(d.position(3, Utf16), pos(0, 1));
    assert_eq!(d.position(3, Utf32), pos(0, 1));
    // A byte inside a char rounds down.
    assert_eq!(d.position(4, Utf16), pos(0, 1));
    assert_eq!(d.point(8), Point::new(1, 1));
    assert_eq!(d.point(5), Point::new(0, 3));
}

#[test]
fn emoji_is_a_surrogate_pair_in_utf16() {
    // 😀 is 4 bytes, 2 UTF-16 units, 1 char.
    let d = doc("a😀b");
    assert_eq!(d.offset(pos(0, 1), Utf16), Ok(1));
    // Between the two surrogates: rounds down to the start of 😀.
    assert_eq!(d.offset(pos(0, 2), Utf16), Ok(1));
    assert_eq!(d.offset(pos(0, 3), Utf16), Ok(5));
    assert_eq!(d.offset(pos(0, 2), Utf32), Ok(5));
    assert_eq!(d.offset(pos(0, 5), Utf8), Ok(5));
    assert_eq!(d.offset(pos(0, 3), Utf8), Ok(1));
    assert_eq!(d.position(5, Utf8), pos(0, 5));
    assert_eq!(d.position(5, Utf16), pos(0, 3));
    assert_eq!(d.position(5, Utf32), pos(0, 2));
    assert_eq!(d.position(6, Utf16), pos(0, 4));
}

#[test]
fn edit_after_emoji_in_each_encoding() {
    for (enc, character) in [(Utf8, 5), (Utf16, 3), (Utf32, 2)] {
        let mut d = doc("a😀b\n");
        let edit = d
            .apply_change(range(0, character, 0, character + 1), "c", enc)
            .unwrap();
        assert_eq!(d.text(), "a😀c\n", "{enc}");
        assert_eq!(
            (edit.start_byte, edit.old_end_byte, edit.new_end_byte),
            (5, 6, 6)
        );
        assert_eq!(edit.start_point, Point::new(0, 5));
    }
}

#[test]
fn combining_mark_is_its_own_char() {
    // "é" written as e + U+0301 (2 bytes): positions count code units, not graphemes.
    let d = doc("e\u{301}x");
    assert_eq!(d.offset(pos(0, 1), Utf16), Ok(1));
    assert_eq!(d.offset(pos(0, 2), Utf16), Ok(3));
    assert_eq!(d.offset(pos(0, 2), Utf32), Ok(3));
    assert_eq!(d.offset(pos(0, 2), Utf8), Ok(1));
    assert_eq!(d.offset(pos(0, 3), Utf8), Ok(3));
    assert_eq!(d.position(4, Utf16), pos(0, 3));
    assert_eq!(d.position(4, Utf8), pos(0, 4));
}

#[test]
fn character_past_line_end_clamps_before_the_line_break() {
    for text in ["abc\ndef", "abc\r\ndef", "abc\rdef"] {
        let d = doc(text);
        for enc in [Utf8, Utf16, Utf32] {
            assert_eq!(d.offset(pos(0, 3), enc), Ok(3), "{text:?}");
            assert_eq!(d.offset(pos(0, 4), enc), Ok(3), "{text:?}");
            assert_eq!(d.offset(pos(0, u32::MAX), enc), Ok(3), "{text:?}");
            assert_eq!(d.offset(pos(1, 99), enc), Ok(text.len()), "{text:?}");
        }
    }
}

#[test]
fn line_past_the_end_is_an_error() {
    let d = doc("a\nb");
    assert_eq!(d.len_lines(), 2);
    assert_eq!(
        d.offset(pos(2, 0), Utf16),
        Ok(3),
        "the line just after the last one"
    );
    let err = d.offset(pos(3, 0), Utf16).unwrap_err();
    assert_eq!(err, TextError::LineOutOfRange { line: 3, lines: 2 });
    assert_eq!(
        err.to_string(),
        "line 3 is past the end of the document, which has 2 lines (lines count from 0)"
    );
    let err = d.offset(pos(u32::MAX, 0), Utf16).unwrap_err();
    assert!(matches!(err, TextError::LineOutOfRange { .. }));
}

#[test]
fn end_of_document_after_trailing_newline() {
    let d = doc("abc\n");
    assert_eq!(d.len_lines(), 2);
    assert_eq!(d.offset(pos(1, 0), Utf16), Ok(4));
    assert_eq!(d.offset(pos(1, 5), Utf16), Ok(4));
    assert_eq!(d.offset(pos(2, 0), Utf16), Ok(4));
    assert!(d.offset(pos(3, 0), Utf16).is_err());
    assert_eq!(d.position(4, Utf16), pos(1, 0));
    assert_eq!(d.point(4), Point::new(1, 0));
    assert_eq!(d.line_start(1), 4);
    assert_eq!(d.line_of(4), 1);
    assert_eq!(d.line_content(1), 4..4);
}

#[test]
fn crlf_document() {
    let d = doc("a\r\nbc\r\n");
    assert_eq!(d.len_lines(), 3);
    assert_eq!(d.line_start(1), 3);
    assert_eq!(d.line_start(2), 7);
    assert_eq!(d.line_content(0), 0..1);
    assert_eq!(d.line_content(1), 3..5);
    assert_eq!(d.offset(pos(1, 1), Utf16), Ok(4));
    assert_eq!(d.position(3, Utf16), pos(1, 0));
    assert_eq!(d.position(7, Utf16), pos(2, 0));
    // The byte between '\r' and '\n' has no position of its own: it is the end of its line.
    assert_eq!(d.position(2, Utf16), pos(0, 1));
    assert_eq!(d.line_of(2), 0);
    // Tree-sitter counts columns in bytes and rows at '\n'.
    assert_eq!(d.point(1), Point::new(0, 1));
    assert_eq!(d.point(2), Point::new(0, 2));
    assert_eq!(d.point(3), Point::new(1, 0));
    assert_eq!(d.point(7), Point::new(2, 0));
}

#[test]
fn lone_cr_is_a_line_break_for_lsp_but_not_for_tree_sitter() {
    let d = doc("a\rb\nc");
    assert_eq!(d.len_lines(), 3);
    assert_eq!(d.offset(pos(1, 0), Utf16), Ok(2));
    assert_eq!(d.position(2, Utf16), pos(1, 0));
    assert_eq!(d.position(4, Utf16), pos(2, 0));
    assert_eq!(d.point(2), Point::new(0, 2));
    assert_eq!(d.point(4), Point::new(1, 0));
}

#[test]
fn unicode_separators_are_not_line_breaks() {
    let d = doc("a\u{2028}b\u{2029}c\u{85}d\u{b}e\u{c}f");
    assert_eq!(d.len_lines(), 1);
    assert_eq!(d.offset(pos(1, 0), Utf16), Ok(d.len_bytes()));
}

#[test]
fn insert_in_the_middle_of_crlf_by_bytes() {
    let mut d = doc("a\r\nb");
    let edit = d.replace(2..2, "x").unwrap();
    assert_eq!(d.text(), "a\rx\nb");
    assert_eq!(
        edit,
        Edit {
            start_byte: 2,
            old_end_byte: 2,
            new_end_byte: 3,
            start_point: Point::new(0, 2),
            old_end_point: Point::new(0, 2),
            new_end_point: Point::new(0, 3),
        }
    );
    // The pair is split: "a", "x", "b".
    assert_eq!(d.len_lines(), 3);
    assert_eq!(d.offset(pos(1, 0), Utf16), Ok(2));
    assert_eq!(d.offset(pos(2, 0), Utf16), Ok(4));
    assert_eq!(d.position(3, Utf16), pos(1, 1));
    assert_eq!(d.point(3), Point::new(0, 3));
    assert_eq!(d.point(5), Point::new(1, 1));
    // Joining them again.
    d.replace(2..3, "").unwrap();
    assert_eq!(d.text(), "a\r\nb");
    assert_eq!(d.len_lines(), 2);
    assert_eq!(d.point(3), Point::new(1, 0));
}

#[test]
fn lsp_position_cannot_split_crlf() {
    // A client that counts only '\n' may think (0, 2) is between '\r' and '\n'; it clamps to
    // the line end, before the '\r'.
    let mut d = doc("a\r\nb");
    d.apply_change(range(0, 2, 0, 2), "x", Utf16).unwrap();
    assert_eq!(d.text(), "ax\r\nb");
}

#[test]
fn inserting_lf_after_cr_merges_the_line_break() {
    let mut d = doc("a\rb");
    assert_eq!(d.len_lines(), 2);
    let edit = d.apply_change(range(1, 0, 1, 0), "\n", Utf16).unwrap();
    assert_eq!(d.text(), "a\r\nb");
    assert_eq!(d.len_lines(), 2);
    assert_eq!(edit.start_point, Point::new(0, 2));
    assert_eq!(edit.new_end_point, Point::new(1, 0));
    assert_eq!(d.point(3), Point::new(1, 0));
    assert_eq!(d.position(3, Utf16), pos(1, 0));
}

#[test]
fn deleting_lf_of_crlf_leaves_a_lone_cr() {
    let mut d = doc("a\r\nb");
    d.replace(2..3, "").unwrap();
    assert_eq!(d.text(), "a\rb");
    assert_eq!(d.len_lines(), 2);
    assert_eq!(d.position(2, Utf16), pos(1, 0));
    assert_eq!(d.point(2), Point::new(0, 2));
}

#[test]
fn delete_across_lines() {
    let mut d = doc("one\ntwo\nthree");
    let edit = d.apply_change(range(0, 1, 2, 2), "", Utf16).unwrap();
    assert_eq!(d.text(), "oree");
    assert_eq!(
        edit,
        Edit {
            start_byte: 1,
            old_end_byte: 10,
            new_end_byte: 1,
            start_point: Point::new(0, 1),
            old_end_point: Point::new(2, 2),
            new_end_point: Point::new(0, 1),
        }
    );
    assert_eq!(d.len_lines(), 1);
}

#[test]
fn delete_across_crlf_lines() {
    let mut d = doc("one\r\ntwo\r\nthree");
    d.apply_change(range(0, 3, 2, 0), " ", Utf16).unwrap();
    assert_eq!(d.text(), "one three");
}

#[test]
fn edits_at_line_ends() {
    let mut d = doc("abc\ndef");
    d.apply_change(range(0, 3, 0, 3), "X", Utf16).unwrap();
    assert_eq!(d.text(), "abcX\ndef");
    // Past the line end clamps to the end of the line.
    d.apply_change(range(0, 99, 0, 99), "Y", Utf16).unwrap();
    assert_eq!(d.text(), "abcXY\ndef");
    // Replacing the line break joins the lines.
    let edit = d.apply_change(range(0, 5, 1, 0), "", Utf16).unwrap();
    assert_eq!(d.text(), "abcXYdef");
    assert_eq!(edit.old_end_point, Point::new(1, 0));
    // Appending at the end of the document through the line after the last one.
    d.apply_change(range(1, 0, 1, 0), "\n", Utf16).unwrap();
    assert_eq!(d.text(), "abcXYdef\n");
}

#[test]
fn multi_line_insert_points() {
    let mut d = doc("fn f() {}\n");
    let edit = d
        .apply_change(range(0, 8, 0, 8), "\n    x😀\n", Utf16)
        .unwrap();
    assert_eq!(d.text(), "fn f() {\n    x😀\n}\n");
    assert_eq!(edit.start_point, Point::new(0, 8));
    assert_eq!(edit.new_end_point, Point::new(2, 0));
    assert_eq!(edit.new_end_byte, 8 + "\n    x😀\n".len());
}

#[test]
fn replace_whole_text() {
    let mut d = doc("old\ntext");
    let edit = d.apply_change(None, "new 😀\n", Utf16).unwrap();
    assert_eq!(d.text(), "new 😀\n");
    assert_eq!(
        edit,
        Edit {
            start_byte: 0,
            old_end_byte: 8,
            new_end_byte: 9,
            start_point: Point::new(0, 0),
            old_end_point: Point::new(1, 4),
            new_end_point: Point::new(1, 0),
        }
    );
}

#[test]
fn inverted_range_is_an_error_and_leaves_the_document_unchanged() {
    let mut d = doc("abc\ndef");
    let err = d.apply_change(range(1, 0, 0, 1), "x", Utf16).unwrap_err();
    assert_eq!(
        err,
        TextError::RangeInverted {
            start: pos(1, 0),
            end: pos(0, 1)
        }
    );
    assert_eq!(
        err.to_string(),
        "the range ends (line 0, character 1) before it starts (line 1, character 0)"
    );
    let err = d.apply_change(range(0, 0, 9, 0), "x", Utf16).unwrap_err();
    assert_eq!(err, TextError::LineOutOfRange { line: 9, lines: 2 });
    assert_eq!(d.text(), "abc\ndef");
}

#[test]
fn range_whose_ends_clamp_to_the_same_byte_is_empty() {
    let mut d = doc("ab\ncd");
    let edit = d.apply_change(range(0, 9, 0, 5), "x", Utf16);
    assert!(matches!(edit, Err(TextError::RangeInverted { .. })));
    let edit = d.apply_change(range(0, 5, 0, 9), "x", Utf16).unwrap();
    assert_eq!((edit.start_byte, edit.old_end_byte), (2, 2));
    assert_eq!(d.text(), "abx\ncd");
}

#[test]
#[allow(clippy::reversed_empty_ranges)] // inverted on purpose
fn byte_replace_errors() {
    let mut d = doc("a😀b");
    assert_eq!(
        d.replace(2..3, "x"),
        Err(TextError::NotCharBoundary { byte: 2 })
    );
    assert_eq!(
        d.replace(1..9, "x"),
        Err(TextError::ByteOutOfRange { byte: 9, len: 6 })
    );
    assert_eq!(
        d.replace(5..1, "x"),
        Err(TextError::ByteRangeInverted { start: 5, end: 1 })
    );
    assert_eq!(d.text(), "a😀b");
    d.replace(1..5, "é").unwrap();
    assert_eq!(d.text(), "aéb");
}

#[test]
fn error_messages_are_readable() {
    assert_eq!(
        TextError::ByteOutOfRange { byte: 9, len: 6 }.to_string(),
        "byte offset 9 is past the end of the document (6 bytes)"
    );
    assert_eq!(
        TextError::NotCharBoundary { byte: 2 }.to_string(),
        "byte offset 2 is inside a multi-byte character"
    );
    assert_eq!(
        TextError::ByteRangeInverted { start: 5, end: 1 }.to_string(),
        "the byte range ends at 1 before it starts at 5"
    );
}

#[test]
#[allow(clippy::reversed_empty_ranges)] // inverted on purpose
fn slice_clamps_to_char_boundaries() {
    let d = doc("a😀b");
    assert_eq!(d.slice(0..1), "a");
    assert_eq!(d.slice(2..100), "😀b");
    assert_eq!(d.slice(1..3), "");
    assert_eq!(d.slice(5..2), "");
    assert_eq!(d.slice(100..200), "");
    assert_eq!(d.floor_char_boundary(3), 1);
    assert!(d.is_char_boundary(5));
    assert!(!d.is_char_boundary(4));
    assert!(!d.is_char_boundary(7));
}

#[test]
fn position_clamps_bytes_past_the_end() {
    let d = doc("ab\ncd");
    assert_eq!(d.position(999, Utf16), pos(1, 2));
    assert_eq!(d.point(999), Point::new(1, 2));
    assert_eq!(d.line_of(999), 1);
}

#[test]
fn many_small_edits_on_a_large_document() {
    // Each edit is O(edit + log n): 20k edits on a ~1 MB document finish quickly even unoptimised.
    let line = "let x = \"中文😀\"; // comment\r\n";
    let mut d = doc(&line.repeat(30_000));
    let mut expected_len = d.len_bytes();
    for i in 0..20_000u32 {
        let l = (i * 7919) % 30_000;
        let edit = d.apply_change(range(l, 9, l, 9), "y", Utf16).unwrap();
        assert_eq!(edit.start_point.row, l as usize);
        expected_len += 1;
    }
    assert_eq!(d.len_bytes(), expected_len);
    assert_eq!(d.len_lines(), 30_001);
}
