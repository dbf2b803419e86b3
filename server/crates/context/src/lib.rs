//! Context gathering for one completion, below the protocol: which open documents are offered
//! to retrieval, and repository snippets from the workspace index within a byte budget and a
//! deadline.
//!
//! One function, [`gather`], serves the server's requests, the server's background prefill and
//! `moat eval --context repo`, so that what eval measures and what the prefill warms is what the
//! editor gets.
//!
//! Must not: know LSP types or touch the model. It reads the index (which may do IO), so it lives
//! outside `moat-complete`, which stays IO-free.

use std::time::{Duration, Instant};

use moat_complete::Snippet;
use moat_index::{Index, Query};
use moat_text::Document;

/// Retrieval gets at most this long in the server; the index answers with what it has by then.
pub const RETRIEVAL_DEADLINE: Duration = Duration::from_millis(20);

/// The server's default budget of repository snippet text, in bytes.
pub const DEFAULT_BUDGET_BYTES: usize = 3000;

/// Open documents larger than this are not offered to retrieval.
pub const OPEN_DOCUMENT_MAX_BYTES: usize = 256 * 1024;

/// At most this many open documents (besides the current one) are offered to retrieval.
pub const MAX_OPEN_DOCUMENTS: usize = 8;

/// A document open in the editor, by its workspace-relative path.
#[derive(Clone)]
pub struct OpenDocument {
    pub path: String,
    pub doc: Document,
}

/// What context is gathered for.
pub struct Request<'a> {
    /// The document's workspace-relative path: its own indexed chunks and definitions are never
    /// returned (the prompt already holds the file around the cursor).
    pub path: &'a str,
    pub text: &'a str,
    /// Byte offset of the cursor in `text`.
    pub cursor: usize,
    /// Open documents (the current one may be among them: it is left out).
    pub open_documents: &'a [OpenDocument],
    /// Total bytes of snippet text.
    pub budget_bytes: usize,
    /// Bounds the similar-code search; the server passes [`RETRIEVAL_DEADLINE`], `moat eval`
    /// passes `None` so that its figures are deterministic.
    pub deadline: Option<Duration>,
}

/// Repository context for a completion: definitions of names used near the cursor and code
/// similar to the lines before it, least useful first (as `CompletionInput::snippets` wants).
/// The query uses the text before the cursor's line only, so the snippets (and the prompt's
/// start, and the KV cache) stay the same while typing on a line.
pub fn gather(index: &Index, request: &Request<'_>) -> Vec<Snippet> {
    let started = Instant::now();
    let text = request.text;
    let cursor = request.cursor.min(text.len());
    let cursor = (0..=cursor)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let line_start = text[..cursor].rfind('\n').map_or(0, |i| i + 1);
    let open_files = offered_open_documents(request.path, request.open_documents);
    let query = Query {
        path: request.path,
        text_before_cursor: &text[..line_start],
        identifiers_near_cursor: &[],
        open_files: &open_files,
        budget_bytes: request.budget_bytes,
        deadline: request.deadline.map(|d| started + d),
    };
    index
        .retrieve(&query)
        .into_iter()
        .map(|s| Snippet {
            path: s.path,
            text: s.text,
        })
        .collect()
}

/// The open documents offered to retrieval as `(path, text)`: not the current one, none larger
/// than [`OPEN_DOCUMENT_MAX_BYTES`], at most [`MAX_OPEN_DOCUMENTS`].
pub fn offered_open_documents(current: &str, docs: &[OpenDocument]) -> Vec<(String, String)> {
    docs.iter()
        .filter(|d| d.path != current && d.doc.len_bytes() <= OPEN_DOCUMENT_MAX_BYTES)
        .take(MAX_OPEN_DOCUMENTS)
        .map(|d| (d.path.clone(), d.doc.text()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &str, text: &str) -> OpenDocument {
        OpenDocument {
            path: path.into(),
            doc: Document::new(text, 1, "python"),
        }
    }

    #[test]
    fn the_current_and_oversized_documents_are_not_offered() {
        let big = "x".repeat(OPEN_DOCUMENT_MAX_BYTES + 1);
        let mut docs = vec![open("a.py", "a = 1\n"), open("big.py", &big)];
        docs.extend((0..20).map(|i| open(&format!("m{i}.py"), "pass\n")));
        let offered = offered_open_documents("a.py", &docs);
        assert_eq!(offered.len(), MAX_OPEN_DOCUMENTS);
        assert!(offered.iter().all(|(p, _)| p != "a.py" && p != "big.py"));
        assert_eq!(offered[0], ("m0.py".to_string(), "pass\n".to_string()));
    }

    #[test]
    fn snippets_come_from_other_files_and_stay_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let lib = "def parse_config(path):\n    \"\"\"Reads the configuration file.\"\"\"\n    return open(path).read()\n";
        std::fs::write(dir.path().join("lib.py"), lib).unwrap();
        let main =
            "from lib import parse_config\n\nconfig = parse_config(\"a.toml\")\nprint(config)\n";
        std::fs::write(dir.path().join("main.py"), main).unwrap();
        let index = Index::open(dir.path(), cache.path(), Default::default()).unwrap();
        index.refresh(&mut |_| {}).unwrap();
        let cursor = main.find("print").unwrap();
        let request = Request {
            path: "main.py",
            text: main,
            cursor,
            open_documents: &[open("main.py", main)],
            budget_bytes: DEFAULT_BUDGET_BYTES,
            deadline: None,
        };
        let snippets = gather(&index, &request);
        assert!(
            snippets.iter().any(|s| s.path.ends_with("lib.py")),
            "{snippets:?}"
        );
        assert!(snippets.iter().all(|s| !s.path.ends_with("main.py")));
        let tiny = gather(
            &index,
            &Request {
                budget_bytes: 0,
                ..request
            },
        );
        assert!(tiny.is_empty(), "{tiny:?}");
        // A cursor past the end or inside a character is clamped, not a panic.
        let past = Request {
            cursor: main.len() + 10,
            ..request
        };
        let _ = gather(&index, &past);
    }
}
