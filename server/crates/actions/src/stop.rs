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

/// A model stuck in a loop: the third consecutive copy of the same non-blank line; cut at the
/// start of the second copy (one is kept).
pub fn repetition_cut(text: &str) -> Option<usize> {
    let mut at = 0;
    let mut prev: Option<(&str, usize)> = None;
    let mut run = 0;
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break;
        }
        let t = line.trim();
        match prev {
            Some((p, _)) if p == t && !t.is_empty() => {
                run += 1;
                if run == 2 {
                    return prev.map(|(_, second)| second);
                }
                prev = Some((p, at));
            }
            _ => {
                prev = Some((t, at));
                run = 0;
            }
        }
        at += line.len();
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
