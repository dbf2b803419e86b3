//! Post-processing of raw model output into a suggestion worth showing: cut to the mode's extent,
//! drop what repeats the text after the cursor, never break bracket balance, never whitespace only.

use crate::brackets::{open_brackets, scan};
use crate::extent::Extent;
use crate::pipeline::Mode;

pub struct PostContext<'a> {
    /// The prefix window (text before the cursor that the model saw).
    pub prefix: &'a str,
    /// Everything after the cursor.
    pub suffix: &'a str,
    pub mode: Mode,
    pub line_comment: Option<&'a str>,
    /// Most lines in a multi-line suggestion.
    pub max_lines: usize,
}

/// The cursor's line holds only indentation before the cursor.
fn at_indentation(prefix: &str) -> bool {
    prefix
        .rsplit('\n')
        .next()
        .is_some_and(|line| line.chars().all(|c| c == ' ' || c == '\t'))
}

fn is_closer_text(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            matches!(
                c,
                ')' | ']' | '}' | '"' | '\'' | '`' | ';' | ',' | ':' | ' '
            )
        })
}

pub fn postprocess(raw: &str, cx: &PostContext<'_>) -> String {
    let mut raw = &raw[..degenerate_repetition(raw).unwrap_or(raw.len())];
    // On a line that holds only indentation a suggestion never begins with a line break (decoding
    // bans it; a remote server cannot be told): what follows the blank lines is the suggestion.
    let rest_of_line = cx.suffix.split('\n').next().unwrap_or_default();
    if at_indentation(cx.prefix) && rest_of_line.trim().is_empty() {
        let blank = raw.len() - raw.trim_start_matches([' ', '\t']).len();
        if raw[blank..].starts_with(['\n', '\r']) {
            raw = raw.trim_start();
        }
    }
    let mut text = match cx.mode {
        Mode::SingleLine => raw
            .split('\n')
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_string(),
        Mode::MultiLine => {
            let extent = Extent::new(cx.prefix, cx.suffix, cx.max_lines, cx.line_comment);
            let end = extent.cut(raw.as_bytes(), true).unwrap_or(raw.len());
            raw[..end].trim_end().to_string()
        }
    };
    // The user already typed the indentation: the model's own leading indentation is extra.
    if at_indentation(cx.prefix) {
        let trimmed = text.trim_start_matches([' ', '\t']).len();
        text.drain(..text.len() - trimmed);
    }
    let rest_of_line = cx.suffix.split('\n').next().unwrap_or_default();

    // Echo of the suffix: the suggestion ends with what already follows the cursor.
    let rest = rest_of_line.trim_end();
    if !rest.is_empty() {
        if text.ends_with(rest) {
            text.truncate(text.len() - rest.len());
        } else {
            // Only closing punctuation is trimmed partially: `f(x)` + `)` → `f(x`.
            for k in (1..rest.len()).rev() {
                if rest.is_char_boundary(k)
                    && is_closer_text(&rest[..k])
                    && text.ends_with(&rest[..k])
                {
                    text.truncate(text.len() - k);
                    break;
                }
            }
        }
    }
    if cx.mode == Mode::MultiLine {
        // Trailing lines that repeat the first lines after the cursor (a closing `}` the file has).
        let next_lines: Vec<&str> = cx
            .suffix
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect();
        while let Some(last) = text.lines().last().map(str::trim) {
            if last.is_empty() || next_lines.first().is_none_or(|l| *l != last) {
                break;
            }
            let cut = text.rfind('\n').unwrap_or(0);
            text.truncate(cut);
            text.truncate(text.trim_end().len());
        }
    }

    // Bracket balance: cut before the first closer that the prefix did not open.
    let mut stack = open_brackets(cx.prefix, cx.line_comment);
    if let Some(bad) = scan(&text, cx.line_comment, &mut stack) {
        text.truncate(bad);
        text.truncate(text.trim_end().len());
    }

    if text.trim().is_empty() {
        String::new()
    } else {
        text
    }
}

/// Where a degenerate loop starts, if the text has one: the same word four times in a row
/// (`mut mut mut mut`) or the same line (with a letter in it) three times in a row. Greedy decoding of a
/// small model falls into such loops; the suggestion keeps what came before the repeats and the
/// first occurrence. Real code repeats too (`0, 0, 0`), so the thresholds are conservative and
/// only words of two or more characters with a letter count.
pub(crate) fn degenerate_repetition(text: &str) -> Option<usize> {
    const SAME_WORDS: usize = 4;
    const SAME_LINES: usize = 3;
    let mut line_start = 0;
    let mut previous: Option<&str> = None;
    let mut line_run = 0;
    let mut second_line_start = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        // Only lines with a letter: `}` three times in a row is nesting, not a loop.
        if trimmed.chars().any(char::is_alphabetic) {
            if previous == Some(trimmed) {
                line_run += 1;
                if line_run == 2 {
                    second_line_start = line_start;
                }
                if line_run == SAME_LINES {
                    return Some(second_line_start);
                }
            } else {
                previous = Some(trimmed);
                line_run = 1;
            }
        }
        // The same word again and again within the line.
        let (mut run, mut last, mut first_repeat, mut offset) = (0, None, 0, 0);
        for word in line.split_inclusive(char::is_whitespace) {
            let w = word.trim_end();
            if w.chars().count() > 1 && w.chars().any(char::is_alphabetic) {
                if last == Some(w) {
                    run += 1;
                    if run == 2 {
                        first_repeat = offset;
                    }
                    if run == SAME_WORDS {
                        return Some(line_start + first_repeat);
                    }
                } else {
                    (last, run) = (Some(w), 1);
                }
            } else if !w.is_empty() {
                (last, run) = (None, 0);
            }
            offset += word.len();
        }
        line_start += line.len();
    }
    None
}
