//! Where generation stops: syntax boundaries found on the text as it is generated, so the model
//! never runs past the body, statement or comment it was asked for.

/// Python: the first line (after the first) whose indentation is less than `indent` ends the
/// block; returns the byte where it starts. Lines are judged once they have a non-blank char.
pub fn dedent_cut(text: &str, indent: usize) -> Option<usize> {
    let mut at = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let complete_indent = line.trim_start_matches([' ', '\t']);
        let decided = !complete_indent.is_empty() && !complete_indent.starts_with(['\n', '\r']);
        if decided {
            let width = line.len() - complete_indent.len();
            if width < indent && (i > 0 || !line.is_empty()) {
                return Some(at);
            }
        }
        at += line.len();
    }
    None
}

/// Brace languages: bracket depth over `text` (strings and line comments skipped); returns the
/// byte of the closer that takes the depth below zero (the end of the enclosing block).
pub fn unbalanced_closer(text: &str, rust: bool) -> Option<usize> {
    scan(text, rust, |depth, _, _| depth < 0)
}

/// The first line break at which every bracket opened in `text` is closed again, after at least
/// one was opened: the end of one statement or item (`fn x() { … }\n`, `test("…", () => { … });\n`).
pub fn block_done(text: &str, rust: bool) -> Option<usize> {
    let mut opened = false;
    let mut out = None;
    scan(text, rust, |depth, b, i| {
        if depth > 0 {
            opened = true;
        }
        if b == b'\n' && depth == 0 && opened {
            out = Some(i + 1);
            return true;
        }
        depth < 0
    });
    out
}

/// One statement: the first line break with balanced brackets where the next line is indented
/// no more than `indent` (and is not `else`/`elif`/`except`/`finally`/`catch`, and, for brace
/// languages, does not start with a closer of the statement itself).
pub fn statement_done(text: &str, indent: usize, rust: bool) -> Option<usize> {
    let mut cut = None;
    let bytes = text.as_bytes();
    scan(text, rust, |depth, b, i| {
        if depth < 0 {
            cut = Some(crate::shape::line_start(text, i));
            return true;
        }
        if b != b'\n' || depth != 0 {
            return false;
        }
        let next = &text[i + 1..];
        let body = next.trim_start_matches([' ', '\t']);
        if body.is_empty() || body.starts_with(['\n', '\r']) {
            return false; // not decided yet, or a blank line
        }
        let width = next.len() - body.len();
        let continues = [
            "else", "elif", "except", "finally", "catch", "}", ")", "]", ".",
        ]
        .iter()
        .any(|k| body.starts_with(k));
        if width <= indent && !continues {
            cut = Some(i + 1);
            return true;
        }
        let _ = bytes;
        false
    });
    cut
}

/// The longest block of lines [`repetition_cut`] looks for.
const MAX_REPEATED_BLOCK: usize = 32;

/// A model stuck in a loop, on complete lines: the third consecutive copy of the same non-blank
/// line, or a block of k ≥ 2 lines (at most [`MAX_REPEATED_BLOCK`], at least one holding a
/// letter or digit) that exactly repeats the k lines before it. Returns where the first repeated
/// copy starts: one copy is kept, the repetition dropped.
pub fn repetition_cut(text: &str) -> Option<usize> {
    // Complete lines and where each starts.
    let mut lines: Vec<(&str, usize)> = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break;
        }
        lines.push((line.trim_end(), at));
        at += line.len();
        let n = lines.len();
        // One line, three times (compared without indentation).
        if n >= 3 {
            let t = lines[n - 1].0.trim();
            if !t.is_empty() && lines[n - 3..n - 1].iter().all(|(l, _)| l.trim() == t) {
                return Some(lines[n - 2].1);
            }
        }
        // A block of k lines, twice (compared with indentation).
        for k in 2..=(n / 2).min(MAX_REPEATED_BLOCK) {
            let (before, last) = (&lines[n - 2 * k..n - k], &lines[n - k..]);
            let repeated = before.iter().zip(last).all(|((a, _), (b, _))| a == b);
            let says_something = last
                .iter()
                .any(|(l, _)| l.chars().any(char::is_alphanumeric));
            if repeated && says_something {
                return Some(last[0].1);
            }
        }
    }
    None
}

/// Calls `f(depth, byte, index)` after each code byte (outside strings and line comments);
/// stops when `f` returns true. Returns the index it stopped at.
fn scan(text: &str, rust: bool, mut f: impl FnMut(i64, u8, usize) -> bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth: i64 = 0;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q || (b == b'\n' && q != b'`') {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' | b'`' => quote = Some(b),
            // Rust lifetimes ('a) are not strings; a char literal holds no brackets that matter.
            b'\'' if !rust => quote = Some(b),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                i = end;
                continue;
            }
            b'#' if !rust && matches!(bytes.get(i + 1), Some(b' ') | Some(b'!') | None) => {
                let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                i = end;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if f(depth, b, i) {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_block_ends_at_a_dedent() {
        let g = "    x = 1\n    return x\n\ndef g():\n";
        assert_eq!(dedent_cut(g, 4), Some(g.find("def").unwrap()));
        assert_eq!(dedent_cut("    x = 1\n  ", 4), None);
        assert_eq!(dedent_cut("    if x:\n        y\n    z\n", 4), None);
    }

    #[test]
    fn brace_block_ends_at_its_closer() {
        let g = "    let s = \"}\"; // }\n    a + b\n}\n\nfn next() {}";
        assert_eq!(unbalanced_closer(g, true), Some(g.find("}\n\n").unwrap()));
        let g = "    if (a) { return '}'; }\n  }\n";
        assert_eq!(unbalanced_closer(g, false), Some(g.rfind('}').unwrap()));
    }

    #[test]
    fn loops_are_cut() {
        let g = "    a()\n    b()\n    b()\n    b()\n    b()\n";
        assert_eq!(repetition_cut(g), Some(g.find("    b()").unwrap() + 8));
        assert_eq!(repetition_cut("x\nx\ny\n"), None);
    }

    #[test]
    fn a_repeated_block_of_lines_is_cut_after_its_first_copy() {
        let block = "    total += x\n    count += 1\n";
        let g = format!("    total = 0\n{block}{block}{block}");
        assert_eq!(
            repetition_cut(&g),
            Some(g.find(block).unwrap() + block.len())
        );
        // Three lines, twice; the unfinished last line is not judged.
        let block = "    if a:\n        b()\n    c = d\n";
        let g = format!("{block}{block}    if");
        assert_eq!(repetition_cut(&g), Some(block.len()));
        // Not a repetition: a block once, the same lines at another indentation, or a block
        // without a word in it (closers, blank lines).
        assert_eq!(repetition_cut("    a()\n    b()\n    a()\n    c()\n"), None);
        assert_eq!(repetition_cut("  a()\n  b()\n    a()\n    b()\n"), None);
        assert_eq!(repetition_cut("    ]\n)\n    ]\n)\n"), None);
        assert_eq!(repetition_cut("\n\n\n\n"), None);
    }

    #[test]
    fn items_and_statements() {
        let g = "works() {\n        assert_eq!(add(1, 2), 3);\n    }\n    more";
        assert_eq!(block_done(g, true), Some(g.find("    more").unwrap()));
        let g = "    total += x\n    return total\n";
        assert_eq!(
            statement_done(g, 4, false),
            Some(g.find("    return").unwrap())
        );
        let g = "    if x:\n        y()\n    else:\n        z()\n    w\n";
        assert_eq!(statement_done(g, 4, false), Some(g.find("    w").unwrap()));
    }
}
