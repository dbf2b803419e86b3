//! The prefix and suffix windows around the cursor.
//!
//! **Invariant:** while the user types at the cursor, the windows' outer edges stay put: the
//! prefix starts at a syntax boundary chosen from a position quantised to a step (a quarter of
//! the window's byte guess, at most [`STEP`] bytes), and the
//! suffix ends at a boundary chosen from the suffix's own text (which typing at the cursor does not
//! change). Consecutive prompts then share all tokens up to the cursor, and the model reuses its
//! KV cache for them.

use moat_model::ModelTokenizer;
use moat_syntax::SyntaxTree;

/// The prefix window's start moves in steps of at most this many bytes (a quarter of the
/// window's byte guess when that is smaller: a 1 KB step would empty a small model's window).
pub const STEP: usize = 1024;
/// The smallest step.
const MIN_STEP: usize = 64;
/// A generous bytes-per-token guess for code, used to pick a first cut before measuring tokens.
const BYTES_PER_TOKEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Windows {
    /// Byte range of the prefix window (ends at the cursor).
    pub prefix: std::ops::Range<usize>,
    /// Byte range of the suffix window (starts at the cursor).
    pub suffix: std::ops::Range<usize>,
    pub prefix_ids: Vec<u32>,
    pub suffix_ids: Vec<u32>,
}

fn line_start_at_or_after(text: &str, byte: usize) -> usize {
    if byte == 0 {
        return 0;
    }
    let byte = text.ceil_char_boundary(byte);
    // `byte` itself is a line start if the previous char is a newline.
    if text.as_bytes().get(byte - 1) == Some(&b'\n') {
        return byte;
    }
    text[byte..].find('\n').map_or(text.len(), |i| byte + i + 1)
}

fn line_start_before(text: &str, byte: usize) -> usize {
    text[..byte].rfind('\n').map_or(0, |i| i + 1)
}

/// Chooses both windows. `tree` may be `None` (unknown language, huge file): lines are used then.
pub fn choose_windows(
    text: &str,
    cursor: usize,
    tree: Option<&SyntaxTree>,
    tokenizer: &ModelTokenizer,
    prefix_budget: usize,
    suffix_budget: usize,
) -> Windows {
    let cursor = text.floor_char_boundary(cursor.min(text.len()));
    let cursor_line = line_start_before(text, cursor);

    // Prefix: a quantised anchor, then the first boundary at or after it. When the window
    // measures too many tokens, the anchor skips past the excess bytes (re-quantised, so the
    // edge stays stable): two or three encodes, not one per step.
    let guess = prefix_budget * BYTES_PER_TOKEN;
    let step = (guess / 4).clamp(MIN_STEP, STEP);
    let mut anchor = cursor.saturating_sub(guess).div_ceil(step) * step;
    let (prefix_start, prefix_ids) = loop {
        let start = if anchor >= cursor_line {
            cursor_line
        } else {
            let boundary =
                tree.and_then(|t| t.boundaries(text, anchor..cursor_line).first().copied());
            boundary
                .unwrap_or_else(|| line_start_at_or_after(text, anchor))
                .min(cursor_line)
        };
        let ids = tokenizer.encode(&text[start..cursor]);
        if ids.len() <= prefix_budget {
            break (start, ids);
        }
        let excess: usize = ids[..ids.len() - prefix_budget]
            .iter()
            .map(|&id| tokenizer.token_bytes(id).len())
            .sum();
        if start >= cursor_line {
            // One enormous line (minified code): keep its last `prefix_budget` tokens.
            let start = text.ceil_char_boundary((start + excess).min(cursor));
            break (start, tokenizer.encode(&text[start..cursor]));
        }
        anchor = ((start + excess) / step + 1) * step;
    };

    // Suffix: cut at the last boundary (else line end) within the byte guess, then measure.
    let mut limit = suffix_budget * BYTES_PER_TOKEN;
    let (suffix_end, suffix_ids) = loop {
        let far = text.floor_char_boundary((cursor + limit).min(text.len()));
        let end = if far == text.len() {
            far
        } else {
            let first_line_end = text[cursor..]
                .find('\n')
                .map_or(text.len(), |i| cursor + i + 1);
            let boundary =
                tree.and_then(|t| t.boundaries(text, first_line_end..far).last().copied());
            let line = text[cursor..far].rfind('\n').map(|i| cursor + i + 1);
            boundary.or(line).unwrap_or(far).max(cursor)
        };
        let ids = tokenizer.encode(&text[cursor..end]);
        if ids.len() <= suffix_budget || limit == 0 {
            break (end, ids);
        }
        limit /= 2;
    };

    Windows {
        prefix: prefix_start..cursor,
        suffix: cursor..suffix_end,
        prefix_ids,
        suffix_ids,
    }
}
