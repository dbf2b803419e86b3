//! Post-processing of raw model output into a suggestion worth showing: cut to the mode's extent,
//! drop what repeats the text after the cursor, never break bracket balance, never whitespace only.

use crate::brackets::{open_brackets, scan};
use crate::pipeline::Mode;

pub struct PostContext<'a> {
    /// The prefix window (text before the cursor that the model saw).
    pub prefix: &'a str,
    /// Everything after the cursor.
    pub suffix: &'a str,
    pub mode: Mode,
    pub line_comment: Option<&'a str>,
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
    let mut text = match cx.mode {
        Mode::SingleLine => raw
            .split('\n')
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_string(),
        Mode::MultiLine => raw.trim_end().to_string(),
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
