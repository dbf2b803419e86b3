//! Property tests: random incremental edits on random Unicode text agree with a `String` and
//! with the naive model in `common`, and position conversion round-trips in every encoding.

mod common;

use common::{ENCODINGS, Naive};
use moat_text::{Document, Edit, Position, PositionEncoding, Range};
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Pieces chosen to stress the conversions: multi-byte chars, surrogate pairs, combining marks,
/// every LSP line break, and Unicode separators that LSP does *not* count as line breaks.
const PIECES: &[&str] = &[
    "a", "b", "Z", " ", "\t", "\n", "\n", "\r", "\r\n", "\r\n", "é", "e\u{301}", "中", "文", "😀",
    "🦀", "\u{2028}", "\u{2029}", "\u{85}", "\u{b}", "\u{c}", "\u{feff}", "ß",
];

fn text(max_pieces: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(PIECES), 0..max_pieces).prop_map(|p| p.concat())
}

#[derive(Debug, Clone)]
enum Op {
    /// Replace a byte range (ends picked among the current char boundaries).
    Bytes { a: Index, b: Index, text: String },
    /// Replace an LSP range, given as the positions of two char boundaries.
    Lsp {
        a: Index,
        b: Index,
        text: String,
        enc: PositionEncoding,
    },
    /// Replace the whole text.
    All { text: String },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<Index>(), any::<Index>(), text(6)).prop_map(|(a, b, text)| Op::Bytes { a, b, text }),
        8 => (any::<Index>(), any::<Index>(), text(6), select(ENCODINGS.to_vec()))
            .prop_map(|(a, b, text, enc)| Op::Lsp { a, b, text, enc }),
        1 => text(20).prop_map(|text| Op::All { text }),
    ]
}

fn check_document(doc: &Document, expected: &str) {
    assert_eq!(doc.text(), expected);
    assert_eq!(doc.len_bytes(), expected.len());
    let naive = Naive::new(expected);
    assert_eq!(
        doc.len_lines(),
        naive.lines.len(),
        "len_lines of {expected:?}"
    );
    for (line, &(start, end)) in naive.lines.iter().enumerate() {
        assert_eq!(
            doc.line_start(line),
            start,
            "line_start({line}) of {expected:?}"
        );
        assert_eq!(
            doc.line_content(line),
            start..end,
            "line_content({line}) of {expected:?}"
        );
    }
    for b in naive.char_boundaries() {
        assert_eq!(doc.point(b), naive.point(b), "point({b}) of {expected:?}");
        let line = naive.position(b, PositionEncoding::Utf8).line as usize;
        assert_eq!(doc.line_of(b), line, "line_of({b}) of {expected:?}");
        for enc in ENCODINGS {
            let pos = doc.position(b, enc);
            assert_eq!(
                pos,
                naive.position(b, enc),
                "position({b}, {enc}) of {expected:?}"
            );
            let back = doc.offset(pos, enc).unwrap();
            if naive.splits_crlf(b) {
                assert_eq!(
                    back,
                    b - 1,
                    "offset(position({b})) inside CRLF of {expected:?}"
                );
            } else {
                assert_eq!(back, b, "offset(position({b}, {enc})) of {expected:?}");
            }
        }
    }
    // Every position, including past line ends and past the last line, agrees with the model.
    let widest = naive.lines.iter().map(|&(s, e)| e - s).max().unwrap_or(0) as u32;
    for line in 0..naive.lines.len() as u32 + 2 {
        for character in 0..widest + 2 {
            for enc in ENCODINGS {
                let pos = Position::new(line, character);
                assert_eq!(
                    doc.offset(pos, enc).ok(),
                    naive.offset(pos, enc),
                    "offset({pos}, {enc}) of {expected:?}"
                );
            }
        }
    }
}

fn check_edit(edit: Edit, old: &str, new: &str, start: usize, end: usize, inserted: &str) {
    let old_naive = Naive::new(old);
    let new_naive = Naive::new(new);
    let new_end = start + inserted.len();
    assert_eq!(
        edit,
        Edit {
            start_byte: start,
            old_end_byte: end,
            new_end_byte: new_end,
            start_point: old_naive.point(start),
            old_end_point: old_naive.point(end),
            new_end_point: new_naive.point(new_end),
        },
        "edit {start}..{end} -> {inserted:?} of {old:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_edits_match_string(initial in text(30), ops in prop::collection::vec(op(), 0..12)) {
        let mut doc = Document::new(&initial, 0, "plaintext");
        let mut expected = initial.clone();
        check_document(&doc, &expected);
        for (i, op) in ops.into_iter().enumerate() {
            let old = expected.clone();
            let naive = Naive::new(&old);
            let boundaries = naive.char_boundaries();
            let (edit, start, end, inserted) = match op {
                Op::Bytes { a, b, text } => {
                    let (mut s, mut e) = (*a.get(&boundaries), *b.get(&boundaries));
                    if s > e { std::mem::swap(&mut s, &mut e); }
                    (doc.replace(s..e, &text).unwrap(), s, e, text)
                }
                Op::Lsp { a, b, text, enc } => {
                    let (mut s, mut e) = (*a.get(&boundaries), *b.get(&boundaries));
                    if s > e { std::mem::swap(&mut s, &mut e); }
                    let range = Range::new(naive.position(s, enc), naive.position(e, enc));
                    let s = naive.offset(range.start, enc).unwrap();
                    let e = naive.offset(range.end, enc).unwrap();
                    (doc.apply_change(Some(range), &text, enc).unwrap(), s, e, text)
                }
                Op::All { text } => {
                    let edit = doc.apply_change(None, &text, PositionEncoding::Utf16).unwrap();
                    (edit, 0, old.len(), text)
                }
            };
            expected.replace_range(start..end, &inserted);
            check_edit(edit, &old, &expected, start, end, &inserted);
            doc.set_version(i as i32 + 1);
            check_document(&doc, &expected);
        }
    }

    #[test]
    fn slice_never_panics_and_matches_floor_boundaries(t in text(20), a in 0usize..200, b in 0usize..200) {
        let doc = Document::new(&t, 0, "plaintext");
        let floor = |mut x: usize| { x = x.min(t.len()); while !t.is_char_boundary(x) { x -= 1; } x };
        let (s, e) = (floor(a), floor(b));
        let expected = if s <= e { &t[s..e] } else { "" };
        prop_assert_eq!(doc.slice(a..b), expected);
    }
}
