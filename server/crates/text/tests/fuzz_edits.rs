//! Fuzzing document edits (issue 16): long random runs of LSP content changes with *any*
//! positions a client might send — past line ends, past the last line, inside a surrogate pair
//! or a multi-byte char, between the `\r` and `\n` of a CRLF, inverted ranges, whole-text
//! replacements — applied incrementally to a `Document` and checked against a `String` edited
//! the naive way (`common::Naive`). A change the model calls invalid must be an `Err` that leaves
//! the document unchanged; every other one must give the same text, lines and positions.
//!
//! Quick run (CI): `cargo test -p moat-text --test fuzz_edits` (a few thousand edits).
//! Long run: `MOAT_FUZZ_CASES=32000 cargo test --release -p moat-text --test fuzz_edits --
//! --nocapture --test-threads 1` (≥ 1,000,000 edits; prints the count). Failures shrink and are kept in
//! `fuzz_edits.proptest-regressions`, which is committed and replayed first.

#[allow(dead_code)]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::{ENCODINGS, Naive};
use moat_text::{Document, Position, PositionEncoding, Range};
use proptest::prelude::*;
use proptest::sample::select;

/// Pieces that stress conversions: multi-byte chars, surrogate pairs, combining marks, every
/// line break, separators that LSP does not count as line breaks, a NUL.
const PIECES: &[&str] = &[
    "a", "x", "_", " ", "\t", "\n", "\n", "\r", "\r\n", "\r\n", "é", "中", "😀", "🦀", "\u{2028}",
    "\u{85}", "\u{feff}", "\0", "fn ", "{", "}", "\"",
];

fn text(max_pieces: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(PIECES), 0..max_pieces).prop_map(|p| p.concat())
}

/// One `TextDocumentContentChangeEvent`.
#[derive(Debug, Clone)]
enum Change {
    /// A range with raw positions (lines up to a few past the end, characters up to a few past
    /// the widest line): valid, clamped, inside a char, or out of range.
    Range {
        start: (u32, u32),
        end: (u32, u32),
        text: String,
        enc: PositionEncoding,
    },
    /// Typing: one piece inserted at a raw position.
    Type {
        at: (u32, u32),
        text: String,
        enc: PositionEncoding,
    },
    /// The whole text.
    Full { text: String },
}

fn raw_position() -> impl Strategy<Value = (u32, u32)> {
    prop_oneof![
        6 => (0u32..12, 0u32..24),
        1 => (0u32..4, prop_oneof![Just(u32::MAX), Just(u32::MAX - 1), 1000u32..2000]),
        1 => (prop_oneof![Just(u32::MAX), 100u32..1000], 0u32..4),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => (raw_position(), raw_position(), text(5), select(ENCODINGS.to_vec()))
            .prop_map(|(start, end, text, enc)| Change::Range { start, end, text, enc }),
        6 => (raw_position(), select(PIECES), select(ENCODINGS.to_vec()))
            .prop_map(|(at, text, enc)| Change::Type { at, text: text.to_string(), enc }),
        1 => text(24).prop_map(|text| Change::Full { text }),
    ]
}

fn cases() -> u32 {
    std::env::var("MOAT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

static EDITS: AtomicU64 = AtomicU64::new(0);

/// What the naive model says the change does: `Some((start, end))` bytes to replace, `None` when
/// the change must be refused.
fn expected_range(
    naive: &Naive,
    start: Position,
    end: Position,
    enc: PositionEncoding,
) -> Option<(usize, usize)> {
    if end < start {
        return None;
    }
    Some((naive.offset(start, enc)?, naive.offset(end, enc)?))
}

fn check(doc: &Document, expected: &str, step: usize) {
    assert_eq!(doc.text(), expected, "step {step}");
    let naive = Naive::new(expected);
    assert_eq!(
        doc.len_lines(),
        naive.lines.len(),
        "step {step}: {expected:?}"
    );
}

/// A few positions and offsets agree with the model (all of them at the end of a case).
fn check_positions(doc: &Document, expected: &str, all: bool) {
    let naive = Naive::new(expected);
    let boundaries = naive.char_boundaries();
    let step = if all { 1 } else { boundaries.len() / 4 + 1 };
    for &b in boundaries.iter().step_by(step) {
        for enc in ENCODINGS {
            assert_eq!(
                doc.position(b, enc),
                naive.position(b, enc),
                "{expected:?} @{b}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_changes_match_the_naive_model(
        initial in text(40),
        changes in prop::collection::vec(change(), 1..64),
    ) {
        let mut doc = Document::new(&initial, 0, "plaintext");
        let mut expected = initial;
        for (step, change) in changes.into_iter().enumerate() {
            EDITS.fetch_add(1, Ordering::Relaxed);
            let naive = Naive::new(&expected);
            let (range, text, enc) = match change {
                Change::Range { start, end, text, enc } => (
                    Some(Range::new(Position::new(start.0, start.1), Position::new(end.0, end.1))),
                    text,
                    enc,
                ),
                Change::Type { at, text, enc } => {
                    let at = Position::new(at.0, at.1);
                    (Some(Range::new(at, at)), text, enc)
                }
                Change::Full { text } => (None, text, PositionEncoding::Utf16),
            };
            let want = match range {
                None => Some((0, expected.len())),
                Some(r) => expected_range(&naive, r.start, r.end, enc),
            };
            let got = doc.apply_change(range, &text, enc);
            match want {
                Some((s, e)) => {
                    let edit = got.unwrap_or_else(|err| {
                        panic!("step {step}: {range:?} {enc} refused on {expected:?}: {err}")
                    });
                    prop_assert_eq!((edit.start_byte, edit.old_end_byte), (s, e));
                    expected.replace_range(s..e, &text);
                    prop_assert_eq!(edit.new_end_byte, s + text.len());
                }
                None => prop_assert!(
                    got.is_err(),
                    "step {}: {:?} {} accepted on {:?}", step, range, enc, expected
                ),
            }
            check(&doc, &expected, step);
            if step % 8 == 0 {
                check_positions(&doc, &expected, false);
            }
        }
        check_positions(&doc, &expected, true);
    }
}

/// Runs after the property (test order is not guaranteed, so it only reports when it can).
#[test]
fn zz_report_count() {
    let n = EDITS.load(Ordering::Relaxed);
    if n > 0 {
        eprintln!("fuzz_edits: {n} changes checked");
    }
}
