//! Action tests: `$0` marks the cursor; the fake backend plays the model through the real
//! tokenizer of the tiny test model and writes what each test scripts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use moat_model::{CancelToken, FakeBackend, Manifest, ModelTokenizer};
use moat_syntax::{Language, SyntaxTree};

use crate::*;

fn fake(script: impl Fn(&str) -> String + Send + Sync + 'static) -> FakeBackend {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../model-assets/tiny-llama");
    let manifest = Manifest::load(&dir).unwrap();
    let tokenizer = ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap();
    FakeBackend::new(tokenizer, 2048, script)
}

struct Run {
    result: Result<ActionOutcome, ActionError>,
    prompt: String,
    text: String,
}

fn run_action(
    kind: ActionKind,
    language: Language,
    fixture: &str,
    diagnostic: Option<&str>,
    test_file: Option<TestFile>,
    output: &str,
) -> Run {
    let at = fixture.find("$0").expect("fixture has $0");
    let text = fixture.replace("$0", "");
    let tree = SyntaxTree::parse(language, &text).unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let seen2 = seen.clone();
    let output = output.to_string();
    let backend = fake(move |prompt| {
        *seen2.lock().unwrap() = prompt.to_string();
        output.clone()
    });
    let diagnostic = diagnostic.map(|word| {
        let start = text.find(word).expect("diagnostic word in the fixture");
        Diagnostic {
            range: start..start + word.len(),
            message: format!("name '{word}' is not defined"),
        }
    });
    let input = ActionInput {
        kind,
        text: &text,
        path: "src/x",
        tree: &tree,
        range: at..at,
        diagnostic: diagnostic.as_ref(),
        snippets: &[],
        test_file: test_file.as_ref(),
    };
    let result = run(&input, &backend, &CancelToken::new(), &|_| {});
    let prompt = seen.lock().unwrap().clone();
    Run {
        result,
        prompt,
        text,
    }
}

fn applied(run: &Run) -> String {
    let outcome = run.result.as_ref().expect("an edit");
    let edit = &outcome.edits[0];
    assert!(edit.path.is_none());
    format!(
        "{}{}{}",
        &run.text[..edit.range.start],
        edit.new_text,
        &run.text[edit.range.end..]
    )
}

#[test]
fn offers_follow_the_shape() {
    let text = "def add(a, b):\n    pass\n\ndef sub(a, b):\n    return a - b\n";
    let tree = SyntaxTree::parse(Language::Python, text).unwrap();
    let kinds = |at: usize| -> Vec<ActionKind> {
        offers(&tree, text, at..at, &[])
            .iter()
            .map(|o| o.kind)
            .collect()
    };
    assert_eq!(kinds(20), [ActionKind::FillBody, ActionKind::WriteDoc]);
    assert_eq!(kinds(50), [ActionKind::WriteDoc, ActionKind::WriteTest]);
    let d = Diagnostic {
        range: 52..53,
        message: "undefined".into(),
    };
    let o = offers(&tree, text, 50..50, std::slice::from_ref(&d));
    assert_eq!(o.last().unwrap().kind, ActionKind::FixDiagnostic);
    assert_eq!(o.last().unwrap().diagnostic, Some(0));
}

#[test]
fn python_body_is_filled_up_to_the_dedent() {
    let run = run_action(
        ActionKind::FillBody,
        Language::Python,
        "def add(a, b):\n    \"\"\"Adds.\"\"\"\n    pa$0ss\n\n\ndef after():\n    return 1\n",
        None,
        None,
        "    return a + b\n\n\ndef more():\n    pass\n",
    );
    assert_eq!(
        applied(&run),
        "def add(a, b):\n    \"\"\"Adds.\"\"\"\n    return a + b\n\n\ndef after():\n    return 1\n"
    );
    // FIM: the suffix after the body is in the prompt, the stub is not.
    assert!(run.prompt.contains("def after()"), "{}", run.prompt);
    assert!(!run.prompt.contains("pass"), "{}", run.prompt);
}

#[test]
fn rust_body_stops_at_the_closing_brace() {
    let run = run_action(
        ActionKind::FillBody,
        Language::Rust,
        "fn add(a: u32, b: u32) -> u32 {\n    todo!($0)\n}\n\nfn next() {}\n",
        None,
        None,
        "    a + b\n}\n\nfn other() {}\n",
    );
    assert_eq!(
        applied(&run),
        "fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\nfn next() {}\n"
    );
}

#[test]
fn a_body_that_does_not_parse_changes_nothing() {
    let run = run_action(
        ActionKind::FillBody,
        Language::TypeScript,
        "function add(a: number, b: number): number {$0}\n",
        None,
        None,
        "  return a + (b;\n",
    );
    let err = run.result.expect_err("refused");
    assert!(matches!(err, ActionError::DoesNotParse { .. }), "{err}");
    assert!(err.to_string().contains("does not parse"), "{err}");
}

#[test]
fn doc_comments_in_each_convention() {
    let run = run_action(
        ActionKind::WriteDoc,
        Language::Python,
        "def add(a, b):\n    return a + b$0\n",
        None,
        None,
        "Return the sum of a and b.\"\"\"\n    more",
    );
    assert_eq!(
        applied(&run),
        "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return a + b\n"
    );
    let run = run_action(
        ActionKind::WriteDoc,
        Language::Rust,
        "#[inline]\npub fn add(a: u32) -> u32 {\n    a$0\n}\n",
        None,
        None,
        "Returns `a`.\n/// Unchanged.\n#[inline]\n",
    );
    assert_eq!(
        applied(&run),
        "/// Returns `a`.\n/// Unchanged.\n#[inline]\npub fn add(a: u32) -> u32 {\n    a\n}\n"
    );
    let run = run_action(
        ActionKind::WriteDoc,
        Language::TypeScript,
        "export function add(a: number): number {\n  return a;$0\n}\n",
        None,
        None,
        "Returns a.\n * @param a the number\n */\nexport",
    );
    assert_eq!(
        applied(&run),
        "/**\n * Returns a.\n * @param a the number\n */\nexport function add(a: number): number {\n  return a;\n}\n"
    );
}

#[test]
fn a_diagnostic_is_fixed_by_rewriting_its_statement() {
    let run = run_action(
        ActionKind::FixDiagnostic,
        Language::Python,
        "def total(xs):\n    t = 0\n    for x in xs:\n        t += y$0\n    return t\n",
        Some("y"),
        None,
        "        t += x\n    return t\n",
    );
    assert_eq!(
        applied(&run),
        "def total(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n"
    );
    assert!(
        run.prompt.contains("# Fixed: name 'y' is not defined"),
        "{}",
        run.prompt
    );
    // The same statement again is no fix.
    let run = run_action(
        ActionKind::FixDiagnostic,
        Language::Python,
        "def f():\n    return y$0\n",
        Some("y"),
        None,
        "    return y\n",
    );
    assert!(matches!(run.result, Err(ActionError::Empty(_))));
}

#[test]
fn tests_follow_the_test_file() {
    let test_file = TestFile {
        path: Some("tests/test_x.py".into()),
        text: Some(
            "from pkg.x import sub\n\n\ndef test_sub():\n    assert sub(2, 1) == 1\n".into(),
        ),
        import_line: Some("from pkg.x import add".into()),
    };
    let run = run_action(
        ActionKind::WriteTest,
        Language::Python,
        "def add(a, b):\n    return a + b$0\n",
        None,
        Some(test_file),
        "():\n    assert add(1, 2) == 3\n\n\ndef test_other():\n",
    );
    let edit = &run.result.as_ref().unwrap().edits[0];
    assert_eq!(edit.path.as_deref(), Some("tests/test_x.py"));
    let old = "from pkg.x import sub\n\n\ndef test_sub():\n    assert sub(2, 1) == 1\n";
    let new = format!(
        "{}{}{}",
        &old[..edit.range.start],
        edit.new_text,
        &old[edit.range.end..]
    );
    assert_eq!(
        new,
        "from pkg.x import sub\nfrom pkg.x import add\n\n\ndef test_sub():\n    assert sub(2, 1) == 1\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    );
    assert!(run.prompt.contains("def test_sub"), "{}", run.prompt);

    let run = run_action(
        ActionKind::WriteTest,
        Language::Rust,
        "pub fn add(a: u32, b: u32) -> u32 {\n    a + b$0\n}\n",
        None,
        None,
        "works() {\n        assert_eq!(add(1, 2), 3);\n    }\n    more",
    );
    assert_eq!(
        applied(&run),
        "pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn add_works() {\n        assert_eq!(add(1, 2), 3);\n    }\n}\n"
    );
}

#[test]
fn cancelled_before_the_model_runs() {
    let text = "def f():\n    pass\n";
    let tree = SyntaxTree::parse(Language::Python, text).unwrap();
    let cancel = CancelToken::new();
    cancel.cancel();
    let input = ActionInput {
        kind: ActionKind::FillBody,
        text,
        path: "x.py",
        tree: &tree,
        range: 14..14,
        diagnostic: None,
        snippets: &[],
        test_file: None,
    };
    let backend = fake(|_| "    return 1\n".into());
    let r = run(&input, &backend, &cancel, &|_| {});
    assert!(matches!(r, Err(ActionError::Cancelled)), "{:?}", r.err());
    let input = ActionInput {
        range: 100..100,
        ..input
    };
    let r = run(&input, &backend, &CancelToken::new(), &|_| {});
    assert!(matches!(r, Err(ActionError::NotApplicable(_))));
}
