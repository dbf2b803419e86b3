//! A rough bracket scanner: enough to tell which brackets a window leaves open and where a
//! suggestion closes one it should not. Skips string literals and line comments on a best-effort
//! basis; it is a safety net after the model, not a parser.

pub(crate) fn closer_of(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// Brackets left open at the end of `text`, innermost last.
pub(crate) fn open_brackets(text: &str, line_comment: Option<&str>) -> Vec<char> {
    let mut stack = Vec::new();
    scan(text, line_comment, &mut stack);
    stack
}

/// Scans `text` with `stack` as the brackets already open; returns the byte offset of the first
/// closing bracket that does not match (the text should be cut there), if any.
pub(crate) fn scan(text: &str, line_comment: Option<&str>, stack: &mut Vec<char>) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q || c == '\n' {
                quote = None;
            }
            continue;
        }
        if let Some(lc) = line_comment
            && text[i..].starts_with(lc)
        {
            // Skip to the end of the line.
            for (_, c) in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => match stack.last() {
                Some(&open) if closer_of(open) == c => {
                    stack.pop();
                }
                _ => return Some(i),
            },
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unmatched_closers() {
        assert_eq!(open_brackets("f(a, [b", Some("#")), vec!['(', '[']);
        assert_eq!(
            open_brackets("s = \"(\"  # (", Some("#")),
            Vec::<char>::new()
        );
        let mut stack = vec!['('];
        assert_eq!(scan("x))", None, &mut stack), Some(2));
        let mut stack = vec!['['];
        assert_eq!(scan("a)", None, &mut stack), Some(1));
    }
}
