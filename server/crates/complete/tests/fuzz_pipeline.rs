//! Fuzzing the pipeline (issue 16): random documents (code pieces, brackets, quotes, CRLF, lone
//! CR, tabs, multi-byte chars, surrogate-pair chars, NULs), random cursors (any byte, inside a
//! char, past the end), random languages with and without a syntax tree, random budgets and a
//! scripted model that answers random text. `choose_windows` must return ranges that meet at the
//! cursor on char boundaries; `complete` must never panic, and its suggestion must be text that
//! fits its mode (one line in single-line mode, never whitespace only).
//!
//! Quick run (CI): `cargo test -p moat-complete --test fuzz_pipeline` (2,000 documents).
//! Long run: `MOAT_FUZZ_ITERS=100000 cargo test --release -p moat-complete --test fuzz_pipeline
//! -- --nocapture`. A failure prints its seed and case number (`MOAT_FUZZ_SEED`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use moat_complete::{CompletionInput, CompletionSettings, Mode, Snippet, choose_windows, complete};
use moat_model::{CancelToken, FakeBackend, Manifest, ModelTokenizer};
use moat_syntax::{Language, SyntaxTree};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "def ", "fn ", "let ", "return ", "if ", "x", "value", "_1", "(", ")", "[", "]", "{", "}",
    "\"", "'", "`", ":", ";", ",", ".", " = ", " ", "    ", "\t", "\n", "\n", "\r\n", "\r", "#",
    "//", "/*", "*/", "é", "中", "😀", "🦀", "\0", "\u{2028}",
];

fn text(rng: &mut Rng, max: usize) -> String {
    (0..rng.below(max))
        .map(|_| PIECES[rng.below(PIECES.len())])
        .collect()
}

fn tokenizer() -> ModelTokenizer {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../model-assets/tiny-llama");
    let manifest = Manifest::load(&dir).expect("manifest");
    ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).expect("tokenizer")
}

fn iterations() -> u64 {
    std::env::var("MOAT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn seed() -> u64 {
    std::env::var("MOAT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xc0de)
}

const LANGUAGES: &[Option<Language>] = &[
    None,
    Some(Language::Python),
    Some(Language::Rust),
    Some(Language::TypeScript),
    Some(Language::Json),
];

#[test]
fn windows_and_completions_hold_on_random_documents() {
    let tok = tokenizer();
    // One scripted model for all cases; each case sets what it answers.
    let answer = Arc::new(Mutex::new(String::new()));
    let script = answer.clone();
    let backend = FakeBackend::new(tokenizer(), 512, move |_| {
        script.lock().map(|a| a.clone()).unwrap_or_default()
    });
    let mut rng = Rng(seed().wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let n = iterations();
    let trace = std::env::var_os("MOAT_FUZZ_TRACE").is_some();
    for case in 0..n {
        let doc = text(&mut rng, 200);
        let cursor = match rng.below(4) {
            0 => doc.len(),
            1 => doc.len() + rng.below(10),
            _ => rng.below(doc.len() + 1),
        };
        let language = LANGUAGES[rng.below(LANGUAGES.len())];
        let tree = language.and_then(|l| SyntaxTree::parse(l, &doc));
        let context = format!("case {case} (seed {}): {doc:?} @ {cursor}", seed());

        let budget = 1 + rng.below(300);
        if trace {
            eprintln!("{context} language {language:?} budget {budget}");
        }
        let w = choose_windows(
            &doc,
            cursor,
            tree.as_ref(),
            &tok,
            budget,
            1 + rng.below(100),
        );
        let at = doc.floor_char_boundary(cursor.min(doc.len()));
        assert_eq!(w.prefix.end, at, "{context}");
        assert_eq!(w.suffix.start, at, "{context}");
        assert!(
            w.prefix.start <= w.prefix.end && w.suffix.end <= doc.len(),
            "{context}"
        );
        for b in [w.prefix.start, w.suffix.end] {
            assert!(doc.is_char_boundary(b), "{context}: {w:?}");
        }

        *answer.lock().expect("answer") = text(&mut rng, 30);
        let settings = CompletionSettings {
            max_new_tokens: 1 + rng.below(48),
            prefix_tokens: 1 + rng.below(400),
            suffix_tokens: rng.below(120),
            multiline: rng.below(2) == 0,
            max_lines: 1 + rng.below(8),
            skip_in_comments: rng.below(3) == 0,
            skip_in_strings: rng.below(3) == 0,
            ..CompletionSettings::default()
        };
        let snippets = vec![Snippet {
            path: "other.py".into(),
            text: text(&mut rng, 20),
        }];
        let input = CompletionInput {
            text: &doc,
            cursor: at,
            path: Some("fuzz.py"),
            language,
            tree: tree.as_ref(),
            snippets: &snippets,
        };
        match complete(&input, &settings, &backend, &CancelToken::new()) {
            Ok(result) => {
                if result.mode == Some(Mode::SingleLine) {
                    assert!(!result.text.contains('\n'), "{context}: {result:?}");
                }
                assert!(
                    result.text.is_empty() || !result.text.trim().is_empty(),
                    "{context}: {result:?}"
                );
            }
            // A prompt that does not fit is a clean error, never a panic.
            Err(e) => assert!(!e.to_string().is_empty(), "{context}"),
        }
    }
    eprintln!("pipeline fuzz: {n} documents, seed {}", seed());
}

/// The case the fuzzer found (case 539 of seed 0xc0de, a hang): a prefix window a few tokens over
/// budget whose quantised anchor lands inside a multi-byte char that begins a line.
/// `line_start_at_or_after` rounded the anchor *down* to that line's start, the same start as
/// before, so the loop in `choose_windows` never ended (a worker thread spun forever and the
/// request was never answered); it now rounds up. Runs on a watchdog thread: fails instead of
/// hanging.
#[test]
fn an_anchor_inside_a_multibyte_char_at_a_line_start_terminates() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let tok = tokenizer();
        for filler in 0..64 {
            let text = format!(
                "{}\n🦀🦀 value(x)\n中文 = 1\n    return ",
                "a".repeat(filler)
            );
            for budget in 1..40 {
                let w = choose_windows(&text, text.len(), None, &tok, budget, 8);
                assert_eq!(w.prefix.end, text.len());
            }
        }
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("choose_windows did not return within 20 s: it loops");
}
