//! Guard: ropey must be built without `unicode_lines`. Cargo unifies features across the build,
//! so a crate that depends on ropey with default features would silently make U+2028, U+0085,
//! VT and FF line breaks and shift every LSP position after them. Run in the workspace test
//! suite, this test catches that.

#[test]
fn ropey_splits_lines_only_at_lsp_line_breaks() {
    for separator in ["\u{b}", "\u{c}", "\u{85}", "\u{2028}", "\u{2029}"] {
        let rope = moat_text::ropey::Rope::from_str(&format!("a{separator}b"));
        assert_eq!(
            rope.len_lines(),
            1,
            "ropey treats {separator:?} as a line break: some crate enabled ropey's default \
             `unicode_lines` feature; depend on ropey with default-features = false"
        );
    }
    for lsp_break in ["\n", "\r\n", "\r"] {
        let rope = moat_text::ropey::Rope::from_str(&format!("a{lsp_break}b"));
        assert_eq!(
            rope.len_lines(),
            2,
            "{lsp_break:?} must be a line break (feature cr_lines)"
        );
    }
}
