//! How far a multi-line suggestion reaches. One set of rules serves the stop check during
//! generation (so the model stops as soon as what follows would be cut anyway) and
//! post-processing (the same cut on the finished text, for backends that cannot be stopped early).
//!
//! A multi-line suggestion (the cursor is on a line that holds only indentation) ends before the
//! first generated line that
//!
//! 1. is line `max_lines` (counting from 0), or has code indented less than the cursor's line
//!    (the block ended);
//! 2. repeats the file: its trimmed text equals the first non-blank line after the cursor's line,
//!    when that line is non-trivial (more than closing brackets and punctuation, and not a lone
//!    `end`/`pass`/`break`/… keyword); a trivial next line counts only together with the line after
//!    it (the generated lines `}` + `foo();` against the file's `}` + `foo();`);
//! 3. **one statement where one is meant:** starts a new statement when the first line already was
//!    one, in a populated block. Precisely, the suggestion is cut after its first line when all of
//!    these hold:
//!    - the cursor's line is indented (inside a block) and the block already has a statement at the
//!      cursor's indentation or deeper, above the cursor (not the line that opens the block: it does
//!      not end with `:`, `{`, …) or below it (not a closing bracket); comment lines do not count.
//!      In an empty block (`def f():` + cursor, nothing after) a whole body is meant and kept;
//!    - the first line is a complete statement: not a comment, decorator or attribute (`@…`,
//!      `#[…]`), no bracket left open, and it does not end with a block opener or a continuation
//!      (`:` `{` `(` `[` `,` `\` `=` an operator `.` `=>` `->`, or the words `then` `do` `else`
//!      `begin` `repeat`). A trailing `,` counts as a continuation: list items, struct fields and
//!      match arms often come several at a time;
//!    - the next non-blank generated line starts at exactly the cursor's indentation with an
//!      identifier or keyword that does not continue a statement (`else`, `elif`, `except`,
//!      `finally`, `catch`, `and`, `or`, `end`, …). A line that goes deeper, or starts with a bracket,
//!      operator, `.`, quote or comment, is not cut.
//!
//! Rule 2 compares a line only once it is complete (followed by a line break, or at the end of
//! generation) and rule 3 decides only once the next line's first word is complete, so the stop
//! check never cuts on text that may still grow into something else: it cuts where the finished
//! text would be cut.

use crate::brackets::scan;

/// Words that begin a line continuing the statement before it rather than a new one.
const CONTINUATION_WORDS: &[&str] = &[
    "else", "elif", "elseif", "except", "finally", "catch", "rescue", "ensure", "and", "or", "not",
    "in", "is", "then", "where", "as", "end", "until",
];
/// Words that end a line opening a block (Lua, Ruby, shell, Pascal).
const OPENER_WORDS: &[&str] = &["then", "do", "else", "begin", "repeat"];
/// Lines too common to say "this is the file's next line".
const TRIVIAL_WORDS: &[&str] = &[
    "end", "pass", "break", "continue", "return", "else", "fi", "done", "esac", "default",
];

pub(crate) struct Extent {
    /// Indentation (bytes) of the cursor's line.
    base_indent: usize,
    max_lines: usize,
    /// Rule 3 may apply: the cursor is among the statements of a populated block.
    populated_block: bool,
    /// The first two non-blank lines after the cursor's line, trimmed.
    next: Vec<String>,
    line_comment: Option<String>,
}

fn indent_of(line: &[u8]) -> usize {
    line.iter().take_while(|b| b.is_ascii_whitespace()).count()
}

fn trim(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

fn is_trivial(line: &str) -> bool {
    let word = line.trim_end_matches([':', ';']);
    !line.chars().any(char::is_alphanumeric) || TRIVIAL_WORDS.contains(&word)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Extent {
    /// `prefix`: text before the cursor (the window is enough); `suffix`: text after it.
    pub(crate) fn new(
        prefix: &str,
        suffix: &str,
        max_lines: usize,
        line_comment: Option<&str>,
    ) -> Self {
        let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
        let base_indent = indent_of(&prefix.as_bytes()[line_start..]);
        let is_code = |l: &str| {
            let t = l.trim();
            !t.is_empty() && !line_comment.is_some_and(|c| t.starts_with(c))
        };
        let opens_block = |l: &str| l.trim_end().ends_with([':', '{', '(', '[']);
        let above = prefix[..line_start].lines().rev().find(|l| is_code(l));
        let below = suffix.lines().skip(1).find(|l| is_code(l));
        let deep_enough = |l: &str| indent_of(l.as_bytes()) >= base_indent;
        let populated_block = base_indent > 0
            && (above.is_some_and(|l| deep_enough(l) && !opens_block(l))
                || below.is_some_and(|l| {
                    deep_enough(l) && l.trim().chars().any(char::is_alphanumeric)
                }));
        let next = suffix
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(2)
            .map(str::to_string)
            .collect();
        Self {
            base_indent,
            max_lines,
            populated_block,
            next,
            line_comment: line_comment.map(str::to_string),
        }
    }

    /// Where to cut `body` (the generated text from the cursor on), if before its end. `done`:
    /// generation ended, so the last line is complete.
    pub(crate) fn cut(&self, body: &[u8], done: bool) -> Option<usize> {
        let mut lines = Vec::new();
        let mut offset = 0;
        for line in body.split(|&b| b == b'\n') {
            lines.push((offset, line));
            offset += line.len() + 1;
        }
        let last = lines.len() - 1;
        let complete = |n: usize| n < last || done;
        let mut first_code_after_first = true;
        for (n, &(start, line)) in lines.iter().enumerate() {
            let before = start.saturating_sub(1);
            if n > 0 {
                if n >= self.max_lines {
                    return Some(before);
                }
                let indent = indent_of(line);
                let has_code = indent < line.len();
                if has_code && indent < self.base_indent {
                    return Some(before);
                }
                if has_code && std::mem::take(&mut first_code_after_first) {
                    match self.new_statement(line, complete(n)) {
                        Some(true) if self.one_statement_first(lines[0].1) => {
                            return Some(lines[0].1.len());
                        }
                        None => first_code_after_first = true, // decide on more text
                        _ => {}
                    }
                }
            }
            if complete(n) && self.repeats_next(&lines, n, done) {
                return Some(before);
            }
        }
        None
    }

    /// Rule 2 for line `n`.
    fn repeats_next(&self, lines: &[(usize, &[u8])], n: usize, done: bool) -> bool {
        let Some(first) = self.next.first() else {
            return false;
        };
        if trim(lines[n].1) != first.as_bytes() {
            return false;
        }
        if !is_trivial(first) {
            return true;
        }
        let Some(second) = self.next.get(1).filter(|s| !is_trivial(s)) else {
            return false;
        };
        let second_complete = n + 2 < lines.len() || done;
        second_complete
            && lines
                .get(n + 1)
                .is_some_and(|l| trim(l.1) == second.as_bytes())
    }

    /// Rule 3, first condition plus the first line's: a populated block and a complete statement.
    fn one_statement_first(&self, first: &[u8]) -> bool {
        if !self.populated_block {
            return false;
        }
        let first = String::from_utf8_lossy(first);
        let t = first.trim();
        if t.is_empty() || t.starts_with('@') || t.starts_with("#[") {
            return false;
        }
        let code = match self.line_comment.as_deref() {
            Some(c) if t.starts_with(c) => return false,
            // Best effort: a comment marker inside a string cuts too early, which at worst
            // keeps the suggestion whole.
            Some(c) => t.find(c).map_or(t, |i| t[..i].trim_end()),
            None => t,
        };
        let mut stack = Vec::new();
        if scan(code, None, &mut stack).is_some() || !stack.is_empty() {
            return false;
        }
        let continues = code.ends_with([
            ':', '{', '(', '[', ',', '\\', '=', '+', '-', '*', '/', '%', '&', '|', '^', '<', '>',
            '.', '?', '!', '~',
        ]);
        let last_word = code
            .rsplit(|c: char| !c.is_alphanumeric() && c != '_')
            .next();
        let opens = last_word.is_some_and(|w| OPENER_WORDS.contains(&w));
        !code.is_empty() && !continues && !opens
    }

    /// Rule 3, the next line's condition: `Some(true)` when `line` starts a new statement at the
    /// cursor's indentation, `None` while an incomplete line cannot tell yet.
    fn new_statement(&self, line: &[u8], complete: bool) -> Option<bool> {
        let indent = indent_of(line);
        if indent != self.base_indent {
            return Some(false);
        }
        let code = &line[indent..];
        if !code
            .first()
            .is_some_and(|&b| is_word_byte(b) && !b.is_ascii_digit())
        {
            return Some(false);
        }
        let word_len = code.iter().take_while(|&&b| is_word_byte(b)).count();
        if word_len == code.len() && !complete {
            return None; // the word may still grow (`el` → `else`)
        }
        let word = String::from_utf8_lossy(&code[..word_len]);
        Some(!CONTINUATION_WORDS.contains(&word.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(prefix: &str, suffix: &str, body: &str) -> String {
        let e = Extent::new(prefix, suffix, 8, Some("#"));
        let end = e.cut(body.as_bytes(), true).unwrap_or(body.len());
        body[..end].to_string()
    }

    /// The stop check on every prefix of `body` never cuts earlier than the whole text would.
    fn stops_consistently(prefix: &str, suffix: &str, body: &str) {
        let e = Extent::new(prefix, suffix, 8, Some("#"));
        let whole = e.cut(body.as_bytes(), true).unwrap_or(body.len());
        for k in 0..=body.len() {
            if let Some(at) = e.cut(&body.as_bytes()[..k], false) {
                assert_eq!(at, whole, "cut at {at} after {k} bytes of {body:?}");
                return;
            }
        }
    }

    #[test]
    fn block_end_and_max_lines() {
        let body = "a = 1\n    b = 2\nc = 3";
        assert_eq!(cut("def f():\n    ", "\n", body), "a = 1\n    b = 2");
        let e = Extent::new("def f():\n    ", "\n", 2, None);
        assert_eq!(e.cut(b"a\n    b\n    c", false), Some(7));
    }

    #[test]
    fn one_statement_in_a_populated_block() {
        let prefix = "def f(n):\n    total = 0\n    ";
        let suffix = "\n    return total\n";
        // A complete statement, then unrelated statements at the same indentation: one line.
        let body = "total += n\n    print(total)\n    log(total)";
        assert_eq!(cut(prefix, suffix, body), "total += n");
        stops_consistently(prefix, suffix, body);
        // The first line opens a block, leaves a bracket open or continues: kept.
        for kept in [
            "for i in range(n):\n        total += i",
            "total += sum(\n        range(n))",
            "items = [\n        1,\n    ]",
            "x = 1 + \\\n    2",
            "@cache\n    def g(): pass",
            "# add them up\n    total += n",
            "if n: total = 1\n    else: total = 2",
            "total = (n\n    + 1)",
            "total += n\n        more()",
            "while n do\n    total = total + n",
        ] {
            assert_eq!(cut(prefix, suffix, kept), kept, "{kept:?}");
        }
        // A blank line between does not make the next statement related.
        assert_eq!(cut(prefix, suffix, "a = 1\n\n    b = 2"), "a = 1");
        // A new `if` (or `for`, `while`, ...) is a new statement.
        assert_eq!(
            cut(prefix, suffix, "a = 1\n    if a:\n        b()"),
            "a = 1"
        );
        // Braces: the same rule.
        let body = "let y = x + 1;\n    let z = y * 2;";
        assert_eq!(
            cut("fn f(x: i32) {\n    let a = 1;\n    ", "\n    a\n}\n", body),
            "let y = x + 1;"
        );
    }

    #[test]
    fn an_empty_block_keeps_a_whole_body() {
        let body = "total = 0\n    for i in range(n):\n        total += i\n    return total";
        assert_eq!(cut("def f(n):\n    ", "\n", body), body);
        assert_eq!(
            cut("def f(n):\n    # sum up\n    ", "\n\nx = 1\n", body),
            body
        );
        assert_eq!(
            cut("def f(a,\n      n):\n    ", "\n", body),
            body,
            "a signature over two lines opens the block"
        );
        let rust = "let x = 1;\n    x";
        assert_eq!(cut("fn f() -> i32 {\n    ", "\n}\n", rust), rust);
        // Top level: not inside a block, kept.
        assert_eq!(cut("x = 1\n", "\ny = 2\n", "a = 1\nb = 2"), "a = 1\nb = 2");
    }

    #[test]
    fn stops_before_the_files_next_lines() {
        let prefix = "def f(n):\n    ";
        let suffix = "\n    return total\n";
        let body = "for i in range(n):\n        total += i\n    return total\n";
        assert_eq!(
            cut(prefix, suffix, body),
            "for i in range(n):\n        total += i"
        );
        stops_consistently(prefix, suffix, body);
        // The first line itself: nothing to show.
        assert_eq!(cut(prefix, suffix, "return total"), "");
        // Only a complete line matches (`return total` may still become `return total_sum`).
        let e = Extent::new(prefix, suffix, 8, Some("#"));
        assert_eq!(e.cut(b"for x in y:\n    return total", false), None);
        assert_eq!(e.cut(b"for x in y:\n    return total", true), Some(11));
        assert_eq!(e.cut(b"for x in y:\n    return total\n", false), Some(11));
        assert_eq!(e.cut(b"for x in y:\n    return total_sum\n", false), None);
        // A trivial next line (`continue`, `}`) counts only with the one after it.
        let prefix = "def f(xs):\n    for x in xs:\n        ";
        let suffix = "\n        continue\n        done(x)\n";
        let body = "if x:\n            a(x)\n        continue";
        assert_eq!(cut(prefix, suffix, body), body);
        let body = "if x:\n            a(x)\n        continue\n        done(x)";
        assert_eq!(cut(prefix, suffix, body), "if x:\n            a(x)");
        stops_consistently(prefix, suffix, body);
    }
}
