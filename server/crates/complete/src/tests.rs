//! Pipeline tests: `$0` marks the cursor; the fake backend plays the model through the real
//! tokenizer of the tiny test model.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use moat_model::{
    Backend, CancelToken, FakeBackend, GenerateRequest, Generation, Manifest, ModelError,
    ModelTokenizer,
};
use moat_syntax::{Language, SyntaxTree};

use crate::{CompletionInput, CompletionSettings, Mode, ShownSuggestion, choose_windows, complete};

fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../model-assets/tiny-llama")
}

fn tokenizer() -> ModelTokenizer {
    let manifest = Manifest::load(&assets()).unwrap();
    ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap()
}

fn fake(script: impl Fn(&str) -> String + Send + Sync + 'static) -> FakeBackend {
    FakeBackend::new(tokenizer(), 2048, script)
}

/// Runs the pipeline on a `$0` fixture; returns the suggestion and the prompt the model saw.
fn check_with(
    fixture: &str,
    lang: Language,
    settings: &CompletionSettings,
    output: &str,
) -> (String, String) {
    let cursor = fixture.find("$0").expect("fixture needs $0");
    let text = fixture.replace("$0", "");
    let tree = SyntaxTree::parse(lang, &text);
    let seen = Arc::new(Mutex::new(String::new()));
    let seen2 = seen.clone();
    let output = output.to_string();
    let backend = fake(move |prompt| {
        *seen2.lock().unwrap() = prompt.to_string();
        output.clone()
    });
    let input = CompletionInput {
        path: None,
        text: &text,
        cursor,
        language: Some(lang),
        tree: tree.as_ref(),
        snippets: &[],
    };
    let result = complete(&input, settings, &backend, &CancelToken::new()).unwrap();
    let prompt = seen.lock().unwrap().clone();
    (result.text, prompt)
}

fn check(fixture: &str, lang: Language, output: &str) -> String {
    check_with(fixture, lang, &CompletionSettings::default(), output).0
}

#[test]
fn single_line_stops_at_the_line_end() {
    let got = check(
        "def add(a, b):\n    return a$0\n",
        Language::Python,
        " + b\n\nprint(1)",
    );
    assert_eq!(got, " + b");
}

#[test]
fn prompt_is_suffix_prefix_middle_with_the_prefix_last() {
    let (_, prompt) = check_with(
        "x = 1\ny = x$0\nz = 3\n",
        Language::Python,
        &CompletionSettings::default(),
        " + 1",
    );
    // Token healing backs up over the last prefix token, so the prompt ends just before it.
    assert!(
        prompt.starts_with("<|fim_prefix|><|fim_suffix|>\nz = 3\n<|fim_middle|>x = 1\ny ="),
        "{prompt:?}"
    );
}

#[test]
fn multi_line_on_a_fresh_line_stops_when_the_block_ends() {
    let got = check(
        "def f(n):\n    $0\n",
        Language::Python,
        "total = 0\n    for i in range(n):\n        total += i\n    return total\ndef g():\n    pass",
    );
    assert_eq!(
        got,
        "total = 0\n    for i in range(n):\n        total += i\n    return total"
    );
}

#[test]
fn multi_line_drops_a_closing_brace_the_file_already_has() {
    let got = check(
        "fn f() -> i32 {\n    $0\n}\n",
        Language::Rust,
        "let x = 1;\n    x\n}\n",
    );
    assert_eq!(got, "let x = 1;\n    x");
}

#[test]
fn echo_of_the_rest_of_the_line_is_dropped() {
    assert_eq!(check("print($0)\n", Language::Python, "value)"), "value");
    assert_eq!(
        check("items = [$0]\n", Language::Python, "1, 2, 3]"),
        "1, 2, 3"
    );
}

#[test]
fn unmatched_closers_are_cut() {
    assert_eq!(check("x = $0\n", Language::Python, "foo(1))]"), "foo(1)");
}

#[test]
fn whitespace_only_is_empty() {
    assert_eq!(check("x = $0\n", Language::Python, "   \n"), "");
}

#[test]
fn comments_are_skipped_when_configured() {
    let settings = CompletionSettings {
        skip_in_comments: true,
        ..Default::default()
    };
    let (got, prompt) = check_with(
        "# a comment $0\nx = 1\n",
        Language::Python,
        &settings,
        "more words",
    );
    assert_eq!(got, "");
    assert_eq!(prompt, "", "the model must not be asked");
    assert_eq!(
        check("# a comment $0\nx = 1\n", Language::Python, "more words"),
        "more words"
    );
}

#[test]
fn max_lines_caps_multi_line() {
    let settings = CompletionSettings {
        max_lines: 2,
        ..Default::default()
    };
    let (got, _) = check_with(
        "def f():\n    $0\n",
        Language::Python,
        &settings,
        "a = 1\n    b = 2\n    c = 3\n",
    );
    assert_eq!(got, "a = 1\n    b = 2");
}

#[test]
fn single_line_when_text_follows_the_cursor() {
    let text = "foo(bar)\n";
    let settings = CompletionSettings::default();
    let input = CompletionInput {
        path: None,
        text,
        cursor: 4,
        language: None,
        tree: None,
        snippets: &[],
    };
    let backend = fake(|_| "baz, \nnext".into());
    let r = complete(&input, &settings, &backend, &CancelToken::new()).unwrap();
    assert_eq!(r.mode, Some(Mode::SingleLine));
    assert_eq!(r.text, "baz,");
}

#[test]
fn cancelled_requests_return_cancelled() {
    let backend = fake(|_| "something long enough to take several tokens".into());
    let cancel = CancelToken::new();
    cancel.cancel();
    let input = CompletionInput {
        path: None,
        text: "x = ",
        cursor: 4,
        language: None,
        tree: None,
        snippets: &[],
    };
    let err = complete(&input, &CompletionSettings::default(), &backend, &cancel).unwrap_err();
    assert!(matches!(err, moat_model::ModelError::Cancelled));
}

#[test]
fn windows_stay_put_while_typing() {
    let tok = tokenizer();
    let mut text = String::new();
    for i in 0..400 {
        text.push_str(&format!(
            "def function_{i}(a, b):\n    return a * {i} + b\n\n"
        ));
    }
    let base = text.len();
    text.push_str("result = \n\nprint(result)\n");
    let tree = SyntaxTree::parse(Language::Python, &text);
    let first = choose_windows(&text, base + 9, tree.as_ref(), &tok, 512, 128);
    assert!(first.prefix_ids.len() <= 512 && first.suffix_ids.len() <= 128);
    assert!(
        text[..first.prefix.start].ends_with('\n'),
        "prefix starts at a line start"
    );
    // Type a few characters: the window's start and the suffix stay the same.
    let mut typed = text.clone();
    typed.insert_str(base + 9, "function_1");
    let tree = SyntaxTree::parse(Language::Python, &typed);
    let second = choose_windows(&typed, base + 19, tree.as_ref(), &tok, 512, 128);
    assert_eq!(first.prefix.start, second.prefix.start);
    assert_eq!(first.suffix_ids, second.suffix_ids);
    let shared = first
        .prefix_ids
        .iter()
        .zip(&second.prefix_ids)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        shared + 4 >= first.prefix_ids.len(),
        "shared {shared} of {}",
        first.prefix_ids.len()
    );
}

#[test]
fn snippets_go_before_the_fim_prompt() {
    let text = "x = $0\n";
    let cursor = 4;
    let text = text.replace("$0", "");
    let seen = Arc::new(Mutex::new(String::new()));
    let seen2 = seen.clone();
    let backend = fake(move |p| {
        *seen2.lock().unwrap() = p.to_string();
        "1".into()
    });
    let snippets = vec![crate::Snippet {
        path: "lib/util.py".into(),
        text: "def helper(): pass".into(),
    }];
    let input = CompletionInput {
        path: None,
        text: &text,
        cursor,
        language: None,
        tree: None,
        snippets: &snippets,
    };
    complete(
        &input,
        &CompletionSettings::default(),
        &backend,
        &CancelToken::new(),
    )
    .unwrap();
    assert!(
        seen.lock()
            .unwrap()
            .starts_with("<|file_sep|>lib/util.py\ndef helper(): pass\n<|fim_prefix|>")
    );
}

#[test]
fn a_small_context_model_keeps_room_for_repository_snippets() {
    // 512-token model, a long file before the cursor: without a reserve the windows would take
    // the whole prompt and the snippet would never fit.
    let body: String = (0..400)
        .map(|i| format!("value_{i} = compute_{i}(argument_{i})\n"))
        .collect();
    let text = format!("{body}result = ");
    let seen = Arc::new(Mutex::new(String::new()));
    let seen2 = seen.clone();
    let backend = FakeBackend::new(tokenizer(), 512, move |p| {
        *seen2.lock().unwrap() = p.to_string();
        "1".into()
    });
    let snippets = [crate::Snippet {
        path: "lib/util.py".into(),
        text: "def compute_total(values): ...".into(),
    }];
    for (snippets, expect) in [(&snippets[..], true), (&[][..], false)] {
        let input = CompletionInput {
            path: None,
            text: &text,
            cursor: text.len(),
            language: None,
            tree: None,
            snippets,
        };
        let r = complete(
            &input,
            &CompletionSettings::default(),
            &backend,
            &CancelToken::new(),
        )
        .unwrap();
        assert!(r.prompt_tokens < 512, "{}", r.prompt_tokens);
        let prompt = seen.lock().unwrap().clone();
        assert_eq!(
            prompt.contains("def compute_total(values)"),
            expect,
            "{prompt}"
        );
        assert!(
            prompt.contains("value_399 = compute_399(argument_399)"),
            "{prompt}"
        );
    }
}

#[test]
fn typing_through_a_suggestion() {
    let shown = ShownSuggestion::new("value = \n", 8, "compute(1, 2)");
    assert_eq!(shown.advance("value = comp\n", 12), Some("ute(1, 2)"));
}

#[test]
fn fake_backend_is_a_backend() {
    let b = fake(|_| String::new());
    assert_eq!(b.describe(), "fake");
}

#[test]
fn file_context_brings_imports_and_signatures_from_above_the_window() {
    let mut text = String::from(
        "import os\nimport json\n\n\ndef load_config(path, strict=False):\n    return json.load(open(path))\n\n",
    );
    for i in 0..300 {
        text.push_str(&format!("x_{i} = {i}\n"));
    }
    let cursor = text.len();
    text.push('\n');
    let tree = SyntaxTree::parse(Language::Python, &text);
    let tok = tokenizer();
    let windows = choose_windows(&text, cursor, tree.as_ref(), &tok, 256, 64);
    assert!(
        windows.prefix.start > 100,
        "the window must not reach the top"
    );
    let own = crate::pipeline::file_context(
        &text,
        windows.prefix.start,
        tree.as_ref(),
        Some("app/config.py"),
    )
    .unwrap();
    assert_eq!(own.path, "app/config.py");
    assert_eq!(
        own.text,
        "import os\nimport json\n\ndef load_config(path, strict=False):\n"
    );
}

#[test]
fn leading_indentation_is_not_doubled_on_a_fresh_line() {
    let got = check("def f(n):\n    $0\n", Language::Python, "    return n\n");
    assert_eq!(got, "return n");
}

#[test]
fn degenerate_loops_are_cut() {
    use crate::postprocess::degenerate_repetition as rep;
    fn cut(s: &str) -> &str {
        &s[..rep(s).unwrap_or(s.len())]
    }
    assert_eq!(cut("let mut mut mut mut mut mut").trim_end(), "let mut");
    assert_eq!(
        cut("x = 1\ny = 2\n    y = 2\ny = 2\ny = 2\n").trim_end(),
        "x = 1\ny = 2"
    );
    // Real code that repeats a little is kept whole.
    for kept in [
        "[0, 0, 0, 0, 0, 0]",
        "a b a b a b",
        "self.len(self.len(x))",
        "}\n}\n",
        "        }\n    }\n}\n",
        "x += 1\nx += 1\n",
        "assert x == x",
        "\n\n\n\nfoo",
    ] {
        assert_eq!(rep(kept), None, "{kept:?}");
    }
    // Through the pipeline: the loop never reaches the editor.
    let out = check(
        "fn f() {\n    $0\n}\n",
        Language::Rust,
        "let mut mut mut mut mut mut",
    );
    assert_eq!(out, "let mut");
}

/// What the model was asked, recorded by [`Recording`].
#[derive(Debug, Clone, Default)]
struct Asked {
    prompt: Vec<u32>,
    heal: Vec<u8>,
    no_line_break_first: bool,
    generation: Option<Generation>,
}

/// The fake backend, recording each request's prompt ids, healed bytes and generation.
struct Recording {
    inner: FakeBackend,
    asked: Mutex<Asked>,
}

impl Backend for Recording {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn tokenizer(&self) -> &ModelTokenizer {
        self.inner.tokenizer()
    }
    fn context_length(&self) -> usize {
        self.inner.context_length()
    }
    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError> {
        let out = self.inner.generate(req, cancel);
        *self.asked.lock().unwrap() = Asked {
            prompt: req.prompt.clone(),
            heal: req.first_token_prefix.bytes().to_vec(),
            no_line_break_first: req.first_token_prefix.bans_line_break_first(),
            generation: out.as_ref().ok().cloned(),
        };
        out
    }
}

impl Recording {
    /// A fake model over `tok` that wants to write what [`Recording::run`] is given.
    fn new(tok: ModelTokenizer) -> (Self, Arc<Mutex<String>>) {
        let output = Arc::new(Mutex::new(String::new()));
        let wanted = output.clone();
        let inner = FakeBackend::new(tok, 2048, move |_| wanted.lock().unwrap().clone());
        let asked = Mutex::new(Asked::default());
        (Self { inner, asked }, output)
    }
}

/// Runs the pipeline on a `$0` fixture with a fake model that wants to write `output` after the
/// cursor; returns the suggestion and what the model was asked.
fn run_with(
    backend: &(Recording, Arc<Mutex<String>>),
    fixture: &str,
    lang: Language,
    output: &str,
) -> (String, Asked) {
    let cursor = fixture.find("$0").expect("fixture needs $0");
    let text = fixture.replace("$0", "");
    let tree = SyntaxTree::parse(lang, &text);
    *backend.1.lock().unwrap() = output.to_string();
    let input = CompletionInput {
        path: None,
        text: &text,
        cursor,
        language: Some(lang),
        tree: tree.as_ref(),
        snippets: &[],
    };
    let settings = CompletionSettings::default();
    let result = complete(&input, &settings, &backend.0, &CancelToken::new()).unwrap();
    let asked = backend.0.asked.lock().unwrap().clone();
    (result.text, asked)
}

fn run_recorded(
    tok: ModelTokenizer,
    fixture: &str,
    lang: Language,
    output: &str,
) -> (String, Asked) {
    run_with(&Recording::new(tok), fixture, lang, output)
}

/// Whether the token's bytes are whitespace only.
fn blank_token(tok: &ModelTokenizer, id: u32) -> bool {
    tok.token_bytes(id).iter().all(u8::is_ascii_whitespace)
}

#[test]
fn healing_backs_up_over_the_indentation_and_the_line_break() {
    let (got, asked) = run_recorded(
        tokenizer(),
        "def f(x):\n    y = x\n    $0\n",
        Language::Python,
        "return y",
    );
    assert_eq!(got, "return y");
    let tok = tokenizer();
    assert!(
        tok.decode_bytes(&asked.prompt).ends_with(b"y = x"),
        "the prompt ends before the whitespace: {:?}",
        String::from_utf8_lossy(&tok.decode_bytes(&asked.prompt))
    );
    assert_eq!(asked.heal, b"\n    ");
    assert!(asked.no_line_break_first);
}

#[test]
fn a_fresh_indented_line_never_starts_with_a_line_break() {
    // The model wants a blank line first: decoding bans the line break at that position.
    let (got, asked) = run_recorded(
        tokenizer(),
        "def f(x):\n    y = x\n    $0\n",
        Language::Python,
        "\n    return y",
    );
    assert_eq!(got, "return y");
    let generated = asked.generation.unwrap().bytes;
    assert!(
        !generated[asked.heal.len()..].starts_with(b"\n"),
        "{:?}",
        String::from_utf8_lossy(&generated)
    );
    // Column 0 of an empty line is a blank line too: the suggestion starts there.
    let (got, asked) = run_recorded(tokenizer(), "x = 1\n$0\n", Language::Python, "\ny = 2");
    assert!(asked.no_line_break_first);
    assert_eq!(got, "y = 2");
    // Not in the middle of a line's text, though.
    let (_, asked) = run_recorded(tokenizer(), "x = 1\n$0z\n", Language::Python, "\ny = 2");
    assert!(!asked.no_line_break_first);
    // Post-processing holds the line too (a remote server cannot be constrained).
    use crate::postprocess::{PostContext, postprocess};
    let cx = PostContext {
        prefix: "def f(x):\n    y = x\n    ",
        suffix: "\n",
        mode: Mode::MultiLine,
        line_comment: Some("#"),
        max_lines: 8,
    };
    assert_eq!(postprocess("\n    return y", &cx), "return y");
    let cx = PostContext {
        prefix: "def f(x):\n    ",
        ..cx
    };
    assert_eq!(
        postprocess("  \n\n    y = x\n    return y", &cx),
        "y = x\n    return y"
    );
}

#[test]
fn one_statement_in_a_populated_block_stops_generation_early() {
    let (got, asked) = run_recorded(
        tokenizer(),
        "def f(n):\n    total = 0\n    $0\n    return total\n",
        Language::Python,
        "total += n\n    print(total)\n    log(total, n, total * n)\n    save(total)",
    );
    assert_eq!(got, "total += n");
    let generation = asked.generation.unwrap();
    assert_eq!(generation.finish, moat_model::FinishReason::StopCheck);
    assert!(
        !String::from_utf8_lossy(&generation.bytes).contains("log"),
        "the model was stopped at the second statement: {:?}",
        String::from_utf8_lossy(&generation.bytes)
    );
    // A first line that opens a block keeps its body.
    let got = check(
        "def f(n):\n    total = 0\n    $0\n    return total\n",
        Language::Python,
        "for i in range(n):\n        total += i\n    print(total)",
    );
    assert_eq!(
        got,
        "for i in range(n):\n        total += i\n    print(total)"
    );
}

#[test]
fn generation_stops_at_the_lines_that_follow_the_cursor() {
    let (got, asked) = run_recorded(
        tokenizer(),
        "def f(n):\n    total = 0\n    $0\n    return total\n",
        Language::Python,
        "for i in range(n):\n        total += i\n    return total\n\ndef g(m):\n    return m",
    );
    assert_eq!(got, "for i in range(n):\n        total += i");
    let generation = asked.generation.unwrap();
    assert_eq!(generation.finish, moat_model::FinishReason::StopCheck);
    assert!(
        !String::from_utf8_lossy(&generation.bytes).contains("def g"),
        "{:?}",
        String::from_utf8_lossy(&generation.bytes)
    );
}

/// The default model's tokenizer (Qwen2.5-Coder's byte-level BPE), or `None` when the test
/// skips (`moat_model::default_model_for_tests`).
fn default_tokenizer(test: &str) -> Option<ModelTokenizer> {
    let dir = moat_model::default_model_for_tests(test)?;
    let manifest = Manifest::load(&dir).unwrap();
    Some(ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap())
}

#[test]
fn qwen_healed_prompt_does_not_end_in_whitespace_tokens() {
    let Some(tok) = default_tokenizer("qwen_healed_prompt_does_not_end_in_whitespace_tokens")
    else {
        return;
    };
    let backend = Recording::new(tok);
    for (fixture, heal) in [
        // "):\n" + "    ": the indentation token goes.
        ("def f(x):\n    $0\n", "    "),
        // "1" + "\n" + "    ": the line break and the indentation go.
        ("def f(x):\n    y = 1\n    $0\n", "\n    "),
        ("def f(x):\n    y = 1\n\n    $0\n", "\n\n    "),
        // A word cut at the cursor: the last token, as before ("": whichever it is).
        ("def f(x):\n    return x.appe$0\n", ""),
    ] {
        let (_, asked) = run_with(&backend, fixture, Language::Python, "x");
        let tok = backend.0.tokenizer();
        let last = *asked.prompt.last().unwrap();
        assert!(
            tok.is_special(last) || !blank_token(tok, last),
            "{fixture:?}: the prompt ends in {:?}",
            String::from_utf8_lossy(tok.token_bytes(last))
        );
        let prefix = &fixture[..fixture.find("$0").unwrap()];
        let healed = String::from_utf8_lossy(&asked.heal);
        assert!(prefix.ends_with(healed.as_ref()), "{fixture:?}");
        if heal.is_empty() {
            assert!(!healed.trim().is_empty(), "{fixture:?}: {healed:?}");
        } else {
            assert_eq!(healed, heal, "{fixture:?}");
        }
    }
}

#[test]
fn qwen_forced_choice_decode_yields_the_statement_not_a_line_break() {
    let Some(tok) =
        default_tokenizer("qwen_forced_choice_decode_yields_the_statement_not_a_line_break")
    else {
        return;
    };
    let backend = Recording::new(tok);
    for fixture in ["def f(x):\n    $0\n", "def f(x):\n    y = x\n    $0\n"] {
        // A model that goes on naturally, and one that wants a blank line first (what Qwen did
        // after a prompt ending in an indentation token): both give the statement.
        for wanted in ["return x", "\n    return x"] {
            let (got, asked) = run_with(&backend, fixture, Language::Python, wanted);
            assert_eq!(got, "return x", "{fixture:?} {wanted:?}");
            let g = asked.generation.unwrap();
            assert!(g.bytes.starts_with(&asked.heal));
            assert_eq!(
                String::from_utf8_lossy(&g.bytes[asked.heal.len()..]),
                "return x",
                "{fixture:?} {wanted:?}"
            );
        }
    }
}

/// The tiny test model with a `<|repo_name|>` token added to its vocabulary (id 2048), as
/// Qwen2.5-Coder's has: its context format is then `repository` without a manifest field.
fn tokenizer_with_repo_name() -> ModelTokenizer {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("moat-complete-repo-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = std::fs::read_to_string(assets().join("tokenizer.json")).unwrap();
    let json = json.replacen(
        "\"added_tokens\": [",
        "\"added_tokens\": [\n    {\"id\": 2048, \"content\": \"<|repo_name|>\", \"single_word\": false, \
         \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},",
        1,
    );
    std::fs::write(dir.join("tokenizer.json"), json).unwrap();
    let manifest = std::fs::read_to_string(assets().join("model.toml")).unwrap();
    std::fs::write(dir.join("model.toml"), manifest).unwrap();
    let manifest = Manifest::load(&dir).unwrap();
    let tok = ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    tok
}

/// The prompt the model sees for `snippets` under `settings`.
fn prompt_with(
    tok: ModelTokenizer,
    settings: &CompletionSettings,
    snippets: &[crate::Snippet],
) -> String {
    let text = "import util\n\nx = \n";
    let seen = Arc::new(Mutex::new(String::new()));
    let seen2 = seen.clone();
    let backend = FakeBackend::new(tok, 2048, move |p| {
        *seen2.lock().unwrap() = p.to_string();
        "1".into()
    });
    let input = CompletionInput {
        path: Some("app/main.py"),
        text,
        cursor: text.len() - 1,
        language: Some(Language::Python),
        tree: None,
        snippets,
    };
    complete(&input, settings, &backend, &CancelToken::new()).unwrap();
    seen.lock().unwrap().clone()
}

#[test]
fn repository_format_opens_with_the_repo_name_and_labels_the_current_file() {
    let tok = tokenizer_with_repo_name();
    assert_eq!(tok.context_format(), moat_model::ContextFormat::Repository);
    let snippets = [
        crate::Snippet {
            path: "lib/other.py".into(),
            text: "def other(): pass\n".into(),
        },
        crate::Snippet {
            path: "lib/util.py".into(),
            text: "def helper(): pass".into(),
        },
    ];
    let settings = CompletionSettings {
        repo_name: Some("shop".into()),
        ..Default::default()
    };
    let prompt = prompt_with(tok, &settings, &snippets);
    assert!(
        prompt.starts_with(
            "<|repo_name|>shop\n<|file_sep|>lib/other.py\ndef other(): pass\n\
             <|file_sep|>lib/util.py\ndef helper(): pass\n<|file_sep|>app/main.py\n<|fim_prefix|>"
        ),
        "{prompt}"
    );
    // No snippets: no repository frame either.
    let prompt = prompt_with(tokenizer_with_repo_name(), &settings, &[]);
    assert!(prompt.starts_with("<|fim_prefix|>"), "{prompt}");
}

#[test]
fn context_format_can_be_overridden() {
    let snippets = [crate::Snippet {
        path: "lib/util.py".into(),
        text: "def helper(): pass".into(),
    }];
    let comments = CompletionSettings {
        context_format: Some(moat_model::ContextFormat::Comments),
        ..Default::default()
    };
    let prompt = prompt_with(tokenizer_with_repo_name(), &comments, &snippets);
    assert!(
        prompt.starts_with("# lib/util.py\n# def helper(): pass\n<|fim_prefix|>"),
        "{prompt}"
    );
    let file_sep = CompletionSettings {
        context_format: Some(moat_model::ContextFormat::FileSeparator),
        repo_name: Some("shop".into()),
        ..Default::default()
    };
    let prompt = prompt_with(tokenizer_with_repo_name(), &file_sep, &snippets);
    assert!(
        prompt.starts_with("<|file_sep|>lib/util.py\ndef helper(): pass\n<|fim_prefix|>"),
        "{prompt}"
    );
}

#[test]
fn a_line_that_loops_ends_after_its_first_repeat() {
    use crate::pipeline::line_loop;
    let looping = b"\"Expected `{what} output {what} output {what} output {what} output ";
    let cut = line_loop(looping).expect("a loop");
    assert_eq!(&looping[..cut], b"\"Expected `{what} output ");
    // Not loops: an ordinary line, a separator, a short-period run of data, two repeats only.
    for line in [
        &b"let total = compute(a, b) + compute(c, d);"[..],
        b"// ==================================",
        b"let zeros = [0, 0, 0, 0, 0, 0, 0, 0",
        b"assert(x); assert(x); ",
        b"let ones = vec![1.0, 1.0, 1.0, 1.0",
    ] {
        assert_eq!(line_loop(line), None, "{}", String::from_utf8_lossy(line));
    }
    // Through the pipeline: the model's looping line is cut, not spent to the token budget.
    let out = check(
        "fn main() {\n    let s = $0\n}\n",
        Language::Rust,
        "format!(\"{a} b {a} b {a} b {a} b {a} b {a} b {a} b {a} b\");",
    );
    // Cut where the fourth repeat completes, whatever its phase: one repeat is kept.
    assert!(
        out.starts_with("format!(\"{a} b") && out.len() < "format!(\"{a} b {a} b".len(),
        "{out}"
    );
}
