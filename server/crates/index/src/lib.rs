//! `moat-index`: the workspace index — what the rest of the repository can tell the model about
//! the cursor.
//!
//! Owns: the workspace walk (`.gitignore`/`.ignore`/hidden aware, `.moat.toml` include/exclude,
//! size limits, binary and secret-file detection), per-file extraction (definitions with
//! signature and doc, imports, chunks cut at syntax boundaries and tokenized into identifier
//! tokens), redaction of secret-looking strings, the persisted store and its incremental
//! updates, retrieval for a cursor (definitions of the identifiers near it, similar chunks by
//! BM25, the file's own imports) and `workspace/symbol` lookups.
//! Must not: know about LSP types or models, hold the repository text in memory (chunk texts
//! live in the persisted store), hold a lock across a whole scan (a request is served from
//! whatever is indexed so far while [`Index::refresh`] runs), or let a secret reach a returned
//! snippet or symbol (every returned text goes through [`redact`]).
//!
//! ## Store
//! The inverted index is [`tantivy`]: a maintained, mmap-backed engine with BM25 scoring,
//! atomic commits and segment merging, so this crate writes no index format of its own. One
//! tantivy document per chunk (pre-tokenized identifier tokens, stored text), per definition
//! (exact and lowercased name terms, stored signature/doc) and per file (stored imports). Next to
//! it, `manifest.json` maps each file to (mtime, size, content hash) so reopening reindexes only
//! the files that changed; it is written after each tantivy commit, so a crash between the two
//! only costs a re-read, never a stale or duplicated entry (every file's documents are deleted
//! by path before its new ones are added). Commits are not fsynced (an `fsync` per segment
//! file put single-file updates over their 50 ms budget): the store is a cache, checked with
//! tantivy's per-file checksums on open and rebuilt when damaged, of another version, or
//! missing its manifest.
//!
//! ## Memory
//! Bounded by the tantivy writer's arena (16 MB), the reader's mmaps (the OS pages them), the
//! manifest (one small entry per file) and, during a refresh, the files in flight between the
//! reader threads and the writer (a bounded channel). File texts are dropped once extracted.
//!
//! ```no_run
//! use moat_index::{Index, IndexConfig, Query};
//! # fn main() -> Result<(), moat_index::Error> {
//! let root = std::path::Path::new(".");
//! let index = Index::open(root, &root.join(".moat/index"), IndexConfig::load(root)?)?;
//! index.refresh(&mut |p| eprintln!("{}/{}", p.done, p.total))?;
//! let snippets = index.retrieve(&Query {
//!     path: "src/main.rs",
//!     text_before_cursor: "fn main() {\n    let total = add_numbers(",
//!     budget_bytes: 2048,
//!     ..Query::default()
//! });
//! # let _ = snippets; Ok(()) }
//! ```

mod config;
mod extract;
mod hash;
mod index;
mod redact;
mod retrieve;
mod store;
mod walk;

use std::path::{Path, PathBuf};

pub use config::IndexConfig;
pub use index::{FileStatus, Index, Phase, Progress, RefreshReport, SkipCounts, Stats, Symbol};
pub use redact::{
    HIGH_ENTROPY, REDACTED, SecretCounts, is_secret_file, looks_random, redact, redact_counted,
};
pub use retrieve::{
    IMPORTS_FAR_BYTES, Query, RetrievedSnippet, SNIPPET_OVERHEAD_BYTES, SnippetKind, TAIL_LINES,
};
pub use walk::SkipReason;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The persisted store (tantivy) failed.
    #[error("index store: {context}: {message}")]
    Store {
        context: &'static str,
        message: String,
    },
    /// `.moat.toml` (or a glob in it) is invalid.
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    /// Another process holds the index for writing; this one can only search.
    #[error("index at {} is being written by another process; this handle is read-only", .0.display())]
    ReadOnly(PathBuf),
    /// A path given to [`Index::update_file`] / [`Index::remove_file`] is not under the root.
    #[error("{} is outside the workspace root", .0.display())]
    OutsideRoot(PathBuf),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn store(context: &'static str, err: impl std::fmt::Display) -> Error {
        Error::Store {
            context,
            message: err.to_string(),
        }
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Opens (or creates) the index of `root` in `cache_dir` with the root's `.moat.toml`, brings it
/// up to date, and returns its statistics: what `moat index PATH` runs.
pub fn index_path(
    root: &Path,
    cache_dir: &Path,
    progress: &mut impl FnMut(Progress),
) -> Result<Stats> {
    let config = IndexConfig::load(root)?;
    let index = Index::open(root, cache_dir, config)?;
    index.refresh(progress)?;
    Ok(index.stats())
}

/// Opens (or creates) the index of the workspace `root` the way the server does: with the root's
/// `.moat.toml`, in [`default_cache_dir`]. Not refreshed: call [`Index::refresh`].
pub fn open_workspace(root: &Path) -> Result<Index> {
    Index::open(root, &default_cache_dir(root), IndexConfig::load(root)?)
}

/// The default cache directory for the index of `root`:
/// `$XDG_CACHE_HOME/moat/index/<name>-<hash of the canonical root>` (falling back to
/// `~/.cache`), or `<root>/.moat/index` when neither variable is set.
pub fn default_cache_dir(root: &Path) -> PathBuf {
    let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        });
    match base {
        Some(base) => {
            let name = canonical
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("root");
            let hash = hash::fnv1a(canonical.to_string_lossy().as_bytes());
            base.join("moat")
                .join("index")
                .join(format!("{name}-{hash:016x}"))
        }
        None => canonical.join(".moat").join("index"),
    }
}
