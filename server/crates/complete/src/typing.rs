//! Keeping a shown suggestion valid while the user types through it, without asking the model.

/// A suggestion as it was shown: where, and with what text before and after the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownSuggestion {
    /// Byte offset of the cursor when the suggestion was made.
    cursor: usize,
    /// The bytes just before that cursor (up to [`ANCHOR`]).
    before: String,
    /// The bytes just after that cursor (up to [`ANCHOR`]).
    after: String,
    text: String,
}

const ANCHOR: usize = 256;

impl ShownSuggestion {
    pub fn new(text: &str, cursor: usize, suggestion: &str) -> Self {
        let cursor = text.floor_char_boundary(cursor.min(text.len()));
        let from = text.floor_char_boundary(cursor.saturating_sub(ANCHOR));
        let to = text.floor_char_boundary((cursor + ANCHOR).min(text.len()));
        Self {
            cursor,
            before: text[from..cursor].to_string(),
            after: text[cursor..to].to_string(),
            text: suggestion.to_string(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// If the document at `cursor` is the shown state plus a typed prefix of the suggestion, the
    /// rest of the suggestion (non-empty); else `None`.
    pub fn advance(&self, text: &str, cursor: usize) -> Option<&str> {
        let typed_len = cursor.checked_sub(self.cursor)?;
        if typed_len == 0 || typed_len >= self.text.len() || !self.text.is_char_boundary(typed_len)
        {
            return None;
        }
        let typed = text.get(self.cursor..cursor)?;
        if typed != &self.text[..typed_len] {
            return None;
        }
        let before_start = self.cursor.checked_sub(self.before.len())?;
        if text.get(before_start..self.cursor)? != self.before {
            return None;
        }
        if !text.get(cursor..)?.starts_with(&self.after) {
            return None;
        }
        Some(&self.text[typed_len..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_through_keeps_the_rest() {
        let shown = ShownSuggestion::new("let x = \n", 8, "foo(1)");
        assert_eq!(shown.advance("let x = fo\n", 10), Some("o(1)"));
        assert_eq!(shown.advance("let x = fx\n", 10), None);
        assert_eq!(shown.advance("let y = fo\n", 10), None);
        assert_eq!(shown.advance("let x = foo(1)\n", 14), None);
        assert_eq!(shown.advance("let x = \n", 8), None);
    }
}
