//! Finding and reading the workspace's files.
//!
//! Owns: the directory walk (via the `ignore` crate: `.gitignore`, `.ignore`, git excludes and
//! hidden files respected, even outside a git repository; directory symlinks never followed, so
//! symlink loops cannot recurse), the per-file checks that need the file system (regular file,
//! size limit from metadata before opening, binary detection on the first 8 KB, minified-file
//! detection) and workspace-relative path names.
//! Must not: hold file texts beyond the one being read, open anything but a regular file (a
//! FIFO would block the reader), or read more than `max_file_bytes + 1` bytes of any file.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::config::FileFilter;

/// Why a file was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Matched an exclude glob (or missed every include glob).
    Excluded,
    /// A secret-bearing file (`.env`, `*.pem`, ...).
    Secret,
    /// Larger than `max_file_bytes`.
    TooLarge,
    /// Holds a NUL byte in its first 8 KB.
    Binary,
    /// Lines average over [`MAX_AVERAGE_LINE_BYTES`]: minified or generated.
    Minified,
    /// Not a regular file (FIFO, socket, device, directory symlink), or a path that leads
    /// outside the workspace (a symlink to a file elsewhere, or under a symlinked directory).
    Special,
    /// Could not be read (permissions, dangling symlink, IO error).
    Unreadable,
}

/// How many bytes at the start of a file are searched for a NUL byte.
pub const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// Files whose lines average more than this (and that are over 4 KB) are minified or generated.
pub const MAX_AVERAGE_LINE_BYTES: usize = 400;

/// A file the walk found, before it is read.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Relative to the root, `/`-separated.
    pub rel: String,
    pub abs: PathBuf,
    pub size: u64,
    pub mtime_ns: u64,
}

/// What a walk found: files to look at, and files skipped without being opened.
#[derive(Debug, Default)]
pub(crate) struct WalkOutcome {
    pub files: Vec<Candidate>,
    pub skipped: Vec<(String, SkipReason)>,
}

/// `path` relative to `root`, `/`-separated; `None` when it is not under `root` or not UTF-8.
pub(crate) fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for component in rel.components() {
        match component {
            std::path::Component::Normal(part) => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(part.to_str()?);
            }
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
pub(crate) fn mtime_ns(metadata: &Metadata) -> u64 {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Looks at one path found by the walk or named by the caller: `Ok(candidate)` when it should
/// be read, `Err(reason)` when it is skipped without being opened. Symlinks to files are
/// followed; symlinks to directories are not. Nothing outside the workspace is ever read: the
/// path is resolved (`realpath`) and must stay under the (canonical) root, so a symlink to
/// `~/.ssh/id_rsa` or a path under a symlinked directory is skipped; a symlink's target inside
/// the root must pass the same filters as its name (`config.py -> .env` is a secret).
pub(crate) fn inspect(
    root: &Path,
    path: &Path,
    filter: &FileFilter,
    max_file_bytes: u64,
) -> Result<Candidate, (String, SkipReason)> {
    let Some(rel) = relative(root, path) else {
        // Not valid UTF-8 (or not under the root): no stable name to index it under.
        tracing::debug!(path = %path.display(), "skipping: path is not UTF-8");
        return Err((path.to_string_lossy().into_owned(), SkipReason::Unreadable));
    };
    if let Some(reason) = filter.check_file(&rel) {
        return Err((rel, reason));
    }
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(path) {
            Ok(target) => target,
            Err(err) => {
                tracing::warn!(path = %rel, %err, "skipping unreadable symlink");
                return Err((rel, SkipReason::Unreadable));
            }
        },
        Ok(m) => m,
        Err(err) => {
            tracing::warn!(path = %rel, %err, "skipping unreadable file");
            return Err((rel, SkipReason::Unreadable));
        }
    };
    if !metadata.is_file() {
        tracing::debug!(path = %rel, "skipping: not a regular file");
        return Err((rel, SkipReason::Special));
    }
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(err) => {
            tracing::warn!(path = %rel, %err, "skipping unresolvable path");
            return Err((rel, SkipReason::Unreadable));
        }
    };
    match relative(root, &real) {
        None => {
            tracing::warn!(path = %rel, "skipping: it leads outside the workspace");
            return Err((rel, SkipReason::Special));
        }
        Some(real_rel) if real_rel != rel => {
            if let Some(reason) = filter.check_file(&real_rel) {
                return Err((rel, reason));
            }
        }
        Some(_) => {}
    }
    if metadata.len() > max_file_bytes {
        tracing::debug!(path = %rel, size = metadata.len(), "skipping: too large");
        return Err((rel, SkipReason::TooLarge));
    }
    Ok(Candidate {
        rel,
        // The resolved path: what was checked is what is read.
        abs: real,
        size: metadata.len(),
        mtime_ns: mtime_ns(&metadata),
    })
}

/// Walks `root`, never descending into `cache_dir` or pruned directories. Deterministic order.
pub(crate) fn walk(
    root: &Path,
    cache_dir: &Path,
    filter: &Arc<FileFilter>,
    max_file_bytes: u64,
) -> WalkOutcome {
    let mut out = WalkOutcome::default();
    let prune_root = root.to_path_buf();
    let prune_cache = cache_dir.to_path_buf();
    let prune_filter = Arc::clone(filter);
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(true)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            if !is_dir {
                return true;
            }
            if entry.path().starts_with(&prune_cache) {
                return false;
            }
            match relative(&prune_root, entry.path()) {
                Some(rel) => !prune_filter.prune_dir(&rel),
                None => true,
            }
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                tracing::warn!(%err, "walk error; skipping");
                out.skipped.push((err.to_string(), SkipReason::Unreadable));
                continue;
            }
        };
        if entry.depth() == 0 || entry.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        match inspect(root, entry.path(), filter, max_file_bytes) {
            Ok(candidate) => out.files.push(candidate),
            Err(skip) => out.skipped.push(skip),
        }
    }
    out
}

/// Reads a candidate: its text (lossily decoded) and content hash, or why it is skipped.
/// Reads at most `max_file_bytes + 1` bytes, so a file that grew since the walk is caught too.
pub(crate) fn read(
    candidate: &Candidate,
    max_file_bytes: u64,
) -> Result<(String, u64), SkipReason> {
    let unreadable = |err: std::io::Error| {
        tracing::warn!(path = %candidate.rel, %err, "skipping unreadable file");
        SkipReason::Unreadable
    };
    let file = File::open(&candidate.abs).map_err(unreadable)?;
    // Re-check on the opened handle: the path may have been swapped for a FIFO since the walk.
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(SkipReason::Special);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0).min(1 << 20));
    file.take(max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max_file_bytes {
        return Err(SkipReason::TooLarge);
    }
    if bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0) {
        return Err(SkipReason::Binary);
    }
    if bytes.len() > 4096 {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        if bytes.len() / lines > MAX_AVERAGE_LINE_BYTES {
            return Err(SkipReason::Minified);
        }
    }
    let hash = crate::hash::fnv1a(&bytes);
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    };
    Ok((text, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let root = Path::new("/w");
        assert_eq!(
            relative(root, Path::new("/w/a/b.rs")).as_deref(),
            Some("a/b.rs")
        );
        assert_eq!(relative(root, Path::new("/x/a.rs")), None);
        assert_eq!(relative(root, Path::new("/w")), None);
    }
}
