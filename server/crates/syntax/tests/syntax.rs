//! Behaviour of the public API: cursor info, boundaries, definitions, error counts, incremental
//! reparsing and robustness on any offset. Fixtures mark the cursor with `$0`.

use moat_syntax::{CursorInfo, Language, SyntaxTree, TextEdit};

/// The fixture without its `$0` marker, and the marker's byte offset.
fn fixture(text: &str) -> (String, usize) {
    let at = text.find("$0").expect("fixture has a $0 marker");
    (text.replacen("$0", "", 1), at)
}

fn cursor(lang: Language, text: &str) -> CursorInfo {
    let (src, at) = fixture(text);
    let tree = SyntaxTree::parse(lang, &src).unwrap();
    tree.cursor_info(&src, at)
}

fn in_comment(lang: Language, text: &str) -> bool {
    cursor(lang, text).in_comment
}

fn in_string(lang: Language, text: &str) -> bool {
    cursor(lang, text).in_string
}

#[test]
fn comments() {
    use Language::*;
    assert!(in_comment(Python, "x = 1  # no$0te\n"));
    assert!(
        in_comment(Python, "x = 1  # note$0\n"),
        "end of a line comment is inside"
    );
    assert!(in_comment(Python, "x = 1  # note$0"), "at end of file too");
    assert!(!in_comment(Python, "x = 1 $0 # note\n"));
    assert!(!in_comment(Python, "x = 1  # note\n$0y = 2\n"));
    assert!(in_comment(Rust, "fn f() {\n    // todo$0\n}\n"));
    assert!(!in_comment(Rust, "fn f() {\n    // todo\n$0}\n"));
    assert!(in_comment(C, "int x; /* a $0b */\n"));
    assert!(
        !in_comment(C, "int x; /* a b */$0\n"),
        "right after */ is outside"
    );
    assert!(in_comment(Go, "package p\n// Doc$0\nfunc f() {}\n"));
    assert!(in_comment(Bash, "echo hi # x$0\n"));
}

#[test]
fn strings() {
    use Language::*;
    assert!(in_string(Python, "x = \"ab$0c\"\n"));
    assert!(
        in_string(Python, "x = \"$0abc\"\n"),
        "right after the opening quote"
    );
    assert!(
        !in_string(Python, "x = $0\"abc\"\n"),
        "before the opening quote"
    );
    assert!(
        !in_string(Python, "x = \"abc\"$0\n"),
        "right after the closing quote"
    );
    assert!(in_string(Python, "x = \"\"\"\nmulti $0line\n\"\"\"\n"));
    assert!(in_string(JavaScript, "const s = `a ${b} c$0`;\n"));
    assert!(
        !in_string(JavaScript, "const s = `a ${b$0} c`;\n"),
        "interpolation is code"
    );
    assert!(
        !in_string(Python, "s = f\"a {b$0} c\"\n"),
        "f-string interpolation is code"
    );
    assert!(in_string(Rust, "fn f() { let s = \"x$0\"; }\n"));
    assert!(in_string(Go, "package p\nvar s = `raw$0`\n"));
    assert!(in_string(Json, "{\"key\": \"va$0lue\"}\n"));
    assert!(!in_string(Json, "{\"key\": $0\"value\"}\n"));
}

#[test]
fn unterminated_strings_count_as_strings() {
    use Language::*;
    assert!(in_string(Python, "print(\"hel$0\n"));
    assert!(in_string(Python, "x = 'abc$0\ny = 2\n"));
    assert!(in_string(JavaScript, "const s = \"abc$0\nlet y = 2;\n"));
    assert!(in_string(Rust, "fn f() {\n    let s = \"abc$0\n}\n"));
    assert!(
        !in_string(Python, "print(\"hel\", $0\n"),
        "closed before the cursor"
    );
    assert!(!in_string(Rust, "fn f() {\n    let s = (1, $0\n}\n"));
}

#[test]
fn blocks_and_depth() {
    let info = cursor(
        Language::Rust,
        "fn f() {\n    if x {\n        $0\n    }\n}\n",
    );
    assert_eq!(info.block_depth, 2);
    let (src, _) = fixture("fn f() {\n    if x {\n        $0\n    }\n}\n");
    let block = info.enclosing_block.unwrap();
    assert_eq!(&src[block], "{\n        \n    }");

    let top = cursor(Language::Rust, "fn f() {}\n$0\n");
    assert_eq!(top.block_depth, 0);
    assert_eq!(top.enclosing_block, None);
    assert_eq!(
        cursor(Language::Rust, "fn f() {}$0\n").block_depth,
        0,
        "after the closing brace"
    );
    assert_eq!(
        cursor(Language::Rust, "fn f() $0{}\n").block_depth,
        0,
        "before the opening brace"
    );
    assert_eq!(cursor(Language::Rust, "fn f() {$0}\n").block_depth, 1);

    // A Python suite has no closing delimiter: the end of its last statement is inside.
    let py = cursor(
        Language::Python,
        "class A:\n    def f(self):\n        return 1$0\n",
    );
    assert_eq!(py.block_depth, 2);
    let js = cursor(Language::JavaScript, "const o = { a: [1, $02] };\n");
    assert_eq!(js.block_depth, 2);
}

#[test]
fn errors_near_the_cursor() {
    let broken = cursor(Language::Rust, "fn f() {\n    let x = ;$0\n}\nfn g() {}\n");
    assert!(broken.has_error);
    let elsewhere = cursor(Language::Rust, "fn f() {\n    let x = ;\n}\nfn g() {$0}\n");
    assert!(!elsewhere.has_error, "the error is in another block");
    assert!(!cursor(Language::Python, "x = 1\n$0").has_error);
}

#[test]
fn boundaries_are_line_starts_of_items() {
    let src = "import os\n\nclass A:\n    x = 1\n\n    def f(self):\n        y = 2\n        return y\n\n\ndef g():\n    pass\n";
    let tree = SyntaxTree::parse(Language::Python, src).unwrap();
    let all = tree.boundaries(src, 0..src.len());
    let lines: Vec<&str> = all
        .iter()
        .map(|&b| src[b..].lines().next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "import os",
            "class A:",
            "    x = 1",
            "    def f(self):",
            "        y = 2",
            "        return y",
            "def g():",
            "    pass"
        ]
    );
    for &b in &all {
        assert!(b == 0 || src.as_bytes()[b - 1] == b'\n');
    }
    // Only items starting inside the range.
    let start = src.find("    def f").unwrap();
    let end = src.find("def g").unwrap();
    let some = tree.boundaries(src, start..end);
    assert_eq!(some.len(), 3);
    assert_eq!(some[0], start);
    // Items that do not start their line are not boundaries.
    let one_line = "fn f() { let a = 1; let b = 2; }\n";
    let tree = SyntaxTree::parse(Language::Rust, one_line).unwrap();
    assert_eq!(tree.boundaries(one_line, 0..one_line.len()), [0]);
}

#[test]
fn boundaries_inside_switch_cases_and_statement_lists() {
    let src = "package p\n\nfunc f(x int) int {\n\tswitch x {\n\tcase 1:\n\t\ty := 2\n\t\treturn y\n\t}\n\treturn 0\n}\n";
    let tree = SyntaxTree::parse(Language::Go, src).unwrap();
    let lines: Vec<&str> = tree
        .boundaries(src, 0..src.len())
        .iter()
        .map(|&b| src[b..].lines().next().unwrap().trim())
        .collect();
    assert_eq!(
        lines,
        [
            "package p",
            "func f(x int) int {",
            "switch x {",
            "case 1:",
            "y := 2",
            "return y",
            "return 0"
        ]
    );
}

#[test]
fn definitions_with_kinds_and_signatures() {
    let src = "use std::fmt;\n\npub struct P {\n    x: i32,\n}\n\nimpl P {\n    pub fn new(x: i32) -> Self {\n        P { x }\n    }\n}\n\nfn free<T>(t: T)\nwhere\n    T: Copy,\n{\n}\n";
    let tree = SyntaxTree::parse(Language::Rust, src).unwrap();
    let defs: Vec<(String, String, String)> = tree
        .definitions(src)
        .into_iter()
        .map(|d| (d.kind, d.name, d.signature))
        .collect();
    let expected = [
        ("class", "P", "pub struct P"),
        ("method", "new", "pub fn new(x: i32) -> Self"),
        ("function", "free", "fn free<T>(t: T)\nwhere\n    T: Copy,"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(k, n, s)| (k.to_string(), n.to_string(), s.to_string()))
        .collect();
    assert_eq!(defs, expected);

    let d = &tree.definitions(src)[1];
    assert_eq!(&src[d.name_range.clone()], "new");
    assert!(src[d.range.clone()].starts_with("pub fn new"));
}

#[test]
fn signatures_across_languages() {
    let cases: &[(Language, &str, &str)] = &[
        (
            Language::Python,
            "def f(a, b={}):\n    return a\n",
            "def f(a, b={}):",
        ),
        (Language::Python, "class A(B):\n    pass\n", "class A(B):"),
        (Language::Python, "LIMIT = {\n  'a': 1,\n}\n", "LIMIT = {"),
        (
            Language::Go,
            "package p\ntype T struct {\n\tX int\n}\n",
            "type T struct",
        ),
        (
            Language::JavaScript,
            "const f = (a = {}) => {\n  return a;\n};\n",
            "const f = (a = {}) =>",
        ),
        (
            Language::Java,
            "class A {\n  public int f(int x) {\n    return x;\n  }\n}\n",
            "class A",
        ),
        (
            Language::C,
            "static int f(int x) {\n  return x;\n}\n",
            "static int f(int x)",
        ),
        (Language::Bash, "greet() {\n  echo hi\n}\n", "greet()"),
    ];
    for (lang, src, signature) in cases {
        let tree = SyntaxTree::parse(*lang, src).unwrap();
        let defs = tree.definitions(src);
        assert_eq!(
            defs.first().map(|d| d.signature.as_str()),
            Some(*signature),
            "{lang}: {src}"
        );
    }
}

#[test]
fn no_definitions_in_data_languages() {
    let src = "{\"a\": {\"b\": [1, 2]}}\n";
    let tree = SyntaxTree::parse(Language::Json, src).unwrap();
    assert!(tree.definitions(src).is_empty());
}

#[test]
fn error_counts() {
    let src = "fn f() {\n    let x = ;\n}\n\nfn g() {\n    1\n}\n";
    let tree = SyntaxTree::parse(Language::Rust, src).unwrap();
    assert!(tree.error_count_in(0..src.len()) >= 1);
    let g = src.find("fn g").unwrap();
    assert_eq!(tree.error_count_in(g..src.len()), 0);
    let clean = "fn f() {}\n";
    let tree = SyntaxTree::parse(Language::Rust, clean).unwrap();
    assert_eq!(tree.error_count_in(0..clean.len()), 0);
    // A missing `;` is a zero-width MISSING node; it counts in a range that touches it.
    let missing = "int main() { return 0 }\n";
    let tree = SyntaxTree::parse(Language::C, missing).unwrap();
    let at = missing.find(" }").unwrap();
    assert_eq!(tree.error_count_in(at..at), 1);
    assert_eq!(tree.error_count_in(at - 1..at), 1);
    assert_eq!(tree.error_count_in(at + 1..missing.len()), 0);
}

/// A small deterministic generator, so the edit sequences are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

fn apply(tree: &mut SyntaxTree, text: &mut String, range: std::ops::Range<usize>, insert: &str) {
    let edit = TextEdit::replace(text, range.clone(), insert);
    text.replace_range(edit.start_byte..edit.old_end_byte, insert);
    tree.edit(&edit);
}

#[test]
fn incremental_reparse_matches_a_fresh_parse() {
    let cases: &[(Language, &str, &[&str])] = &[
        (
            Language::Python,
            "import os\n\nclass A:\n    def f(self, x):\n        return x + 1\n\n\ndef g():\n    s = \"日本語 🎉\"\n    return s\n",
            &[
                "x",
                " ",
                "\n",
                "    pass\n",
                "def h():\n    return 2\n",
                "(",
                ")",
                "\"",
                "é",
                "🎉",
                ":",
            ],
        ),
        (
            Language::Rust,
            "fn main() {\n    let v = vec![1, 2];\n    println!(\"{:?} 中文\", v);\n}\n\nstruct S { a: u8 }\n",
            &[
                "x",
                ";",
                "{",
                "}",
                "\n",
                "let y = 3;",
                "fn k() {}\n",
                "\"",
                "ß",
                "🦀",
            ],
        ),
        (
            Language::TypeScript,
            "interface I { a: number }\nconst f = (x: I): number => x.a;\nclass C {\n  m() { return `t ${1}`; }\n}\n",
            &["y", " ", "\n", "{", "}", "`", "const z = 1;\n", "ü"],
        ),
    ];
    for (lang, initial, snippets) in cases {
        let mut rng = Lcg(0x5eed ^ initial.len() as u64);
        let mut text = initial.to_string();
        let mut tree = SyntaxTree::parse(*lang, &text).unwrap();
        for step in 0..120 {
            // One to three edits, then one reparse.
            for _ in 0..1 + rng.next(3) {
                let a = text.floor_char_boundary(rng.next(text.len() + 1));
                let b = text.floor_char_boundary(a + rng.next(8));
                let insert = if rng.next(3) == 0 {
                    ""
                } else {
                    snippets[rng.next(snippets.len())]
                };
                apply(&mut tree, &mut text, a..b, insert);
            }
            assert!(tree.reparse(&text));
            let fresh = SyntaxTree::parse(*lang, &text).unwrap();
            assert_eq!(
                tree.to_sexp(),
                fresh.to_sexp(),
                "{lang} step {step}:\n{text}"
            );
        }
    }
}

#[test]
fn typing_a_function_char_by_char_keeps_the_tree_in_sync() {
    let mut text = String::from("x = 1\n\n");
    let mut tree = SyntaxTree::parse(Language::Python, &text).unwrap();
    let typed = "def área(self, n):\n    return [i * 2 for i in range(n)]  # ✓\n";
    for c in typed.chars() {
        let at = text.len() - 1;
        apply(&mut tree, &mut text, at..at, c.encode_utf8(&mut [0; 4]));
        assert!(tree.reparse(&text));
        let fresh = SyntaxTree::parse(Language::Python, &text).unwrap();
        assert_eq!(tree.to_sexp(), fresh.to_sexp(), "{text}");
    }
    let defs = tree.definitions(&text);
    assert_eq!(defs.last().map(|d| d.name.as_str()), Some("área"));
}

#[test]
fn any_offset_and_multibyte_text_never_panics() {
    let samples: &[(Language, &str)] = &[
        (
            Language::Python,
            "# 注释 🎉\ndef 関数(x):\n    return \"日本語\" + x  # ✓\n",
        ),
        (
            Language::Rust,
            "fn ƒ() -> &'static str {\n    \"😀 emoji\" // コメント\n}\n",
        ),
        (Language::JavaScript, "const s = `${'é'}🎉`; // ok\n"),
        (Language::Json, "{\"κλειδί\": [\"值\", 1]}\n"),
        (Language::Toml, "名前 = \"値\" # c\n[table]\nk = 'ü'\n"),
        (Language::Bash, "echo \"日本 $(date)\" # 🎉\n"),
    ];
    for (lang, src) in samples {
        let tree = SyntaxTree::parse(*lang, src).unwrap();
        for byte in 0..src.len() + 4 {
            let info = tree.cursor_info(src, byte);
            if let Some(block) = info.enclosing_block {
                assert!(block.end <= src.len());
            }
            assert!(tree.error_count_in(byte..byte + 3) <= src.len());
            for end in [0, byte / 2, byte + 1, byte + 7, usize::MAX] {
                for b in tree.boundaries(src, byte..end) {
                    assert!(src.is_char_boundary(b));
                }
            }
        }
        for d in tree.definitions(src) {
            assert_eq!(&src[d.name_range.clone()], d.name);
        }
        // Text that does not match the tree: answers are meaningless but must not panic.
        for stale in ["", "x", &src[..src.floor_char_boundary(src.len() / 2)]] {
            let _ = tree.cursor_info(stale, src.len());
            let _ = tree.boundaries(stale, 0..src.len());
            let _ = tree.definitions(stale);
        }
    }
}

#[test]
fn every_language_parses_an_empty_document() {
    for &lang in Language::all() {
        let tree = SyntaxTree::parse(lang, "").unwrap();
        assert_eq!(tree.language(), lang);
        assert_eq!(tree.cursor_info("", 0), CursorInfo::default());
        assert!(tree.boundaries("", 0..0).is_empty());
        assert!(tree.definitions("").is_empty());
        assert_eq!(tree.error_count_in(0..0), 0);
    }
}
