//! The cold-prompt budget on the real tiny model: a request whose full prompt the model has not
//! cached, and would cost more than the budget to compute, gets a short prompt and one line; once
//! the full prompt is cached (the background prefill's job), requests get it again, typing
//! included.

use std::path::PathBuf;
use std::time::Duration;

use moat_complete::{CompletionInput, CompletionResult, CompletionSettings, Mode, complete};
use moat_model::{
    Backend, CancelToken, GenerateRequest, Generation, ModelError, ModelTokenizer, OnnxBackend,
    OnnxOptions,
};
use moat_syntax::{Language, SyntaxTree};

fn load() -> OnnxBackend {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../model-assets/tiny-llama");
    OnnxBackend::load(
        &dir,
        &OnnxOptions {
            threads: 1,
            ort_library: None,
        },
    )
    .unwrap()
}

/// The real model, as slow per prompt token as a 0.5B model on two cores (the tiny model is
/// thousands of times faster: on its own it never meets the budget). Everything else is the
/// model's own: its caches, what they hold, its answers.
struct Slow(OnnxBackend);

const COST: Duration = Duration::from_millis(1);

impl Backend for Slow {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn tokenizer(&self) -> &ModelTokenizer {
        self.0.tokenizer()
    }
    fn context_length(&self) -> usize {
        self.0.context_length()
    }
    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError> {
        self.0.generate(req, cancel)
    }
    fn prefill(&self, prompt: &[u32], cancel: &CancelToken) -> Result<usize, ModelError> {
        self.0.prefill(prompt, cancel)
    }
    fn cached_prefix(&self, prompt: &[u32]) -> usize {
        self.0.cached_prefix(prompt)
    }
    fn prefill_cost_per_token(&self) -> Option<Duration> {
        Some(COST)
    }
}

/// A Python file of ~40 functions, the cursor on a fresh line at the end of the `n`th.
fn document() -> (String, usize) {
    let mut text = String::from("import math\nimport os\n\n");
    for i in 0..40 {
        text.push_str(&format!(
            "def area_{i}(radius, scale):\n    value = math.pi * radius * radius * {i}\n    return value * scale\n\n"
        ));
    }
    let cursor = text.find("def area_30").unwrap();
    text.insert_str(cursor, "def circumference(radius):\n    \n\n");
    (text, cursor + "def circumference(radius):\n    ".len())
}

fn ask(
    backend: &dyn Backend,
    text: &str,
    cursor: usize,
    budget: Option<Duration>,
) -> CompletionResult {
    let tree = SyntaxTree::parse(Language::Python, text);
    let input = CompletionInput {
        text,
        cursor,
        path: Some("geometry.py"),
        language: Some(Language::Python),
        tree: tree.as_ref(),
        snippets: &[],
    };
    let settings = CompletionSettings {
        cold_prompt_budget: budget,
        ..CompletionSettings::default()
    };
    complete(&input, &settings, backend, &CancelToken::new()).unwrap()
}

#[test]
fn a_cold_request_gets_a_short_prompt_and_a_warm_one_the_full_prompt() {
    let backend = Slow(load());
    let (text, cursor) = document();
    let budget = Some(Duration::from_millis(100));

    // The full prompt, for reference (no budget): several hundred tokens.
    let full = ask(&backend, &text, cursor, None);
    assert!(!full.short_prompt);
    assert!(full.prompt_tokens > 400, "{}", full.prompt_tokens);
    assert_eq!(full.mode, Some(Mode::MultiLine));

    // Another place in the file: nothing of its full prompt is cached; 100 ms at 1 ms a token
    // buys ~100 tokens, so it gets a short prompt and one line.
    let elsewhere = text
        .find("    return value * scale\n\ndef area_12")
        .unwrap()
        + 4;
    let cold = ask(&backend, &text, elsewhere, budget);
    assert!(cold.short_prompt);
    assert!(
        cold.prompt_tokens <= 100 && cold.prompt_tokens >= 32,
        "{}",
        cold.prompt_tokens
    );
    assert_eq!(cold.mode, Some(Mode::SingleLine));
    assert!(!cold.text.contains('\n'), "{:?}", cold.text);
    assert!(cold.generated_tokens <= 32, "{}", cold.generated_tokens);

    // Back at the first place: its full prompt is still cached (the short prompt went into a
    // cache of its own), so the full prompt answers, with a block.
    let warm = ask(&backend, &text, cursor, budget);
    assert!(!warm.short_prompt);
    assert_eq!(warm.prompt_tokens, full.prompt_tokens);
    assert_eq!(warm.text, full.text);
    assert_eq!(warm.mode, Some(Mode::MultiLine));

    // Typing there costs a few tokens: still the full prompt.
    let mut typed = text.clone();
    typed.insert_str(cursor, "ret");
    let typing = ask(&backend, &typed, cursor + 3, budget);
    assert!(!typing.short_prompt);
    assert!(typing.reused_tokens + 100 > typing.prompt_tokens);
}

#[test]
fn no_budget_without_a_measured_cost() {
    // The real backend has measured nothing before its first prompt: no budget applies.
    let backend = load();
    assert_eq!(backend.prefill_cost_per_token(), None);
    let (text, cursor) = document();
    let first = ask(&backend, &text, cursor, Some(Duration::from_millis(1)));
    assert!(!first.short_prompt);
    // Now it has measured that prompt, and the tiny model is fast: a 100 ms budget holds a whole
    // prompt elsewhere.
    let cost = backend.prefill_cost_per_token().expect("measured");
    assert!(cost < Duration::from_millis(100), "{cost:?}");
    let elsewhere = text.find("def area_12").unwrap();
    let next = ask(&backend, &text, elsewhere, Some(Duration::from_secs(10)));
    assert!(!next.short_prompt);
}

#[test]
fn cached_prefix_counts_what_a_cache_holds() {
    let backend = load();
    // A prompt the model never saw shares nothing.
    assert_eq!(backend.cached_prefix(&[7, 7, 7, 7]), 0);
    // A background prefill is counted whole, and a prompt extending it counts its length.
    let first: Vec<u32> = (0..200).map(|i| 100 + (i * 13) % 900).collect();
    assert_eq!(backend.prefill(&first, &CancelToken::new()).unwrap(), 200);
    assert_eq!(backend.cached_prefix(&first), 200);
    let mut longer = first.clone();
    longer.extend([5, 6, 7]);
    assert_eq!(backend.cached_prefix(&longer), 200);
    // A prompt sharing nothing goes into a cache of its own; the first stays counted (parked).
    let second: Vec<u32> = (0..150).map(|i| 200 + (i * 7) % 800).collect();
    backend.prefill(&second, &CancelToken::new()).unwrap();
    assert_eq!(backend.cached_prefix(&second), 150);
    assert_eq!(backend.cached_prefix(&first), 200);
}
