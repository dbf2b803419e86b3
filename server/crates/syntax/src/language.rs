//! The language registry: which languages moat understands, how to recognise them (LSP
//! language id, file extension), their tree-sitter grammar and the query files compiled in
//! from `grammars/<dir>/`.
//!
//! Owns: the mapping language ⇄ grammar ⇄ queries, and compiling each query once per process.
//! Must not: parse documents or run queries (see `tree` and `query`), or read files at runtime —
//! every query is embedded with `include_str!`.

use std::path::Path;
use std::sync::OnceLock;

use tree_sitter::Query;

use crate::SyntaxError;

/// A language with a tree-sitter grammar in this crate.
///
/// `Tsx` is its own variant because it has its own grammar (TypeScript + JSX); it shares the
/// query files of `TypeScript`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Python,
    Rust,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
    Json,
    Toml,
    Bash,
}

/// The two kinds of query file a language has under `grammars/<dir>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryKind {
    /// `tags.scm`: `@definition.*` / `@reference.*` with `@name`.
    Tags,
    /// `context.scm`: `@comment`, `@string`, `@block`.
    Context,
}

const ALL: [Language; 12] = [
    Language::Python,
    Language::Rust,
    Language::JavaScript,
    Language::TypeScript,
    Language::Tsx,
    Language::Go,
    Language::Java,
    Language::C,
    Language::Cpp,
    Language::Json,
    Language::Toml,
    Language::Bash,
];

macro_rules! grammar_queries {
    ($dir:literal) => {
        (
            include_str!(concat!("../../../../grammars/", $dir, "/tags.scm")),
            include_str!(concat!("../../../../grammars/", $dir, "/context.scm")),
        )
    };
}

impl Language {
    /// Every supported language, in a stable order.
    pub fn all() -> &'static [Language] {
        &ALL
    }

    /// The language for an LSP `languageId` (as sent in `textDocument/didOpen`), if supported.
    pub fn from_lsp_id(id: &str) -> Option<Language> {
        Some(match id {
            "python" => Language::Python,
            "rust" => Language::Rust,
            "javascript" | "javascriptreact" | "jsx" => Language::JavaScript,
            "typescript" => Language::TypeScript,
            "typescriptreact" | "tsx" => Language::Tsx,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" => Language::C,
            "cpp" | "cuda-cpp" => Language::Cpp,
            "json" | "jsonc" | "jsonl" => Language::Json,
            "toml" => Language::Toml,
            "shellscript" | "bash" | "sh" => Language::Bash,
            _ => return None,
        })
    }

    /// The language of a file, from its extension (or, for a few dotfiles, its name).
    ///
    /// `.h` maps to C++: the C++ grammar also parses C headers, the C grammar does not parse
    /// C++ ones.
    pub fn from_path(path: &Path) -> Option<Language> {
        let name = path.file_name()?.to_str()?;
        match name {
            ".bashrc" | ".bash_profile" | ".bash_login" | ".bash_logout" | ".profile" => {
                return Some(Language::Bash);
            }
            "Cargo.lock" | "Pipfile" | "poetry.lock" | "uv.lock" => return Some(Language::Toml),
            _ => {}
        }
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "py" | "pyi" | "pyw" => Language::Python,
            "rs" => Language::Rust,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" => Language::C,
            "h" | "cc" | "cpp" | "cxx" | "c++" | "hh" | "hpp" | "hxx" | "h++" | "ipp" | "inl" => {
                Language::Cpp
            }
            "json" | "jsonc" | "json5" => Language::Json,
            "toml" => Language::Toml,
            "sh" | "bash" => Language::Bash,
            _ => return None,
        })
    }

    /// A short lowercase name, stable across versions (used in logs, configs and eval files).
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Rust => "rust",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Go => "go",
            Language::Java => "java",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Json => "json",
            Language::Toml => "toml",
            Language::Bash => "bash",
        }
    }

    /// The prefix of a line comment, or `None` where the language has none (JSON).
    pub fn line_comment(self) -> Option<&'static str> {
        match self {
            Language::Python | Language::Toml | Language::Bash => Some("#"),
            Language::Json => None,
            Language::Rust
            | Language::JavaScript
            | Language::TypeScript
            | Language::Tsx
            | Language::Go
            | Language::Java
            | Language::C
            | Language::Cpp => Some("//"),
        }
    }

    /// Compiles every query of this language now; `Ok` means the queries embedded in the binary
    /// match the grammar. Queries are otherwise compiled lazily on first use.
    pub fn check_queries(self) -> Result<(), SyntaxError> {
        for kind in [QueryKind::Tags, QueryKind::Context] {
            if let Err(err) = self.query(kind) {
                return Err(err.clone());
            }
        }
        Ok(())
    }

    /// The tree-sitter grammar.
    pub(crate) fn grammar(self) -> tree_sitter::Language {
        let f = match self {
            Language::Python => tree_sitter_python::LANGUAGE,
            Language::Rust => tree_sitter_rust::LANGUAGE,
            Language::JavaScript => tree_sitter_javascript::LANGUAGE,
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX,
            Language::Go => tree_sitter_go::LANGUAGE,
            Language::Java => tree_sitter_java::LANGUAGE,
            Language::C => tree_sitter_c::LANGUAGE,
            Language::Cpp => tree_sitter_cpp::LANGUAGE,
            Language::Json => tree_sitter_json::LANGUAGE,
            Language::Toml => tree_sitter_toml_ng::LANGUAGE,
            Language::Bash => tree_sitter_bash::LANGUAGE,
        };
        f.into()
    }

    /// The `(tags.scm, context.scm)` sources, embedded from `grammars/<dir>/`.
    fn query_sources(self) -> (&'static str, &'static str) {
        match self {
            Language::Python => grammar_queries!("python"),
            Language::Rust => grammar_queries!("rust"),
            Language::JavaScript => grammar_queries!("javascript"),
            Language::TypeScript | Language::Tsx => grammar_queries!("typescript"),
            Language::Go => grammar_queries!("go"),
            Language::Java => grammar_queries!("java"),
            Language::C => grammar_queries!("c"),
            Language::Cpp => grammar_queries!("cpp"),
            Language::Json => grammar_queries!("json"),
            Language::Toml => grammar_queries!("toml"),
            Language::Bash => grammar_queries!("bash"),
        }
    }

    /// The folder under `grammars/` that holds this language's query files and tests.
    pub(crate) fn query_dir(self) -> &'static str {
        match self {
            Language::TypeScript | Language::Tsx => "typescript",
            other => other.name(),
        }
    }

    fn index(self) -> usize {
        // `ALL` lists the variants in declaration order.
        self as usize
    }

    /// The compiled query of `kind`, compiled on first use and cached for the process.
    pub(crate) fn query(self, kind: QueryKind) -> &'static Result<Query, SyntaxError> {
        static TAGS: [OnceLock<Result<Query, SyntaxError>>; ALL.len()] =
            [const { OnceLock::new() }; ALL.len()];
        static CONTEXT: [OnceLock<Result<Query, SyntaxError>>; ALL.len()] =
            [const { OnceLock::new() }; ALL.len()];
        let (cells, file) = match kind {
            QueryKind::Tags => (&TAGS, "tags.scm"),
            QueryKind::Context => (&CONTEXT, "context.scm"),
        };
        cells[self.index()].get_or_init(|| {
            let (tags, context) = self.query_sources();
            let source = match kind {
                QueryKind::Tags => tags,
                QueryKind::Context => context,
            };
            Query::new(&self.grammar(), source).map_err(|err| SyntaxError::Query {
                language: self.name(),
                dir: self.query_dir(),
                file,
                row: err.row + 1,
                column: err.column + 1,
                message: format!("{:?}: {}", err.kind, err.message),
            })
        })
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_compiles() {
        for &lang in Language::all() {
            lang.check_queries().unwrap();
        }
    }

    #[test]
    fn every_grammar_loads() {
        for &lang in Language::all() {
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&lang.grammar()).unwrap();
        }
    }

    #[test]
    fn all_is_in_declaration_order() {
        for (i, &lang) in Language::all().iter().enumerate() {
            assert_eq!(lang.index(), i, "{lang}");
        }
    }

    #[test]
    fn recognises_lsp_ids_and_paths() {
        assert_eq!(
            Language::from_lsp_id("typescriptreact"),
            Some(Language::Tsx)
        );
        assert_eq!(Language::from_lsp_id("shellscript"), Some(Language::Bash));
        assert_eq!(Language::from_lsp_id("jsonc"), Some(Language::Json));
        assert_eq!(Language::from_lsp_id("cobol"), None);
        assert_eq!(
            Language::from_path(Path::new("a/b.PY")),
            Some(Language::Python)
        );
        assert_eq!(Language::from_path(Path::new("x.tsx")), Some(Language::Tsx));
        assert_eq!(
            Language::from_path(Path::new("a.jsonc")),
            Some(Language::Json)
        );
        assert_eq!(
            Language::from_path(Path::new("Cargo.lock")),
            Some(Language::Toml)
        );
        assert_eq!(
            Language::from_path(Path::new("~/.bashrc")),
            Some(Language::Bash)
        );
        assert_eq!(Language::from_path(Path::new("Makefile")), None);
        for &lang in Language::all() {
            assert_eq!(Language::from_lsp_id(lang.name()), Some(lang), "{lang}");
        }
    }
}
