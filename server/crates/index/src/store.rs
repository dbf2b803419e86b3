//! The persisted store: the tantivy schema, how a file's extraction becomes tantivy documents,
//! and the JSON manifest of indexed files.
//!
//! Owns: the on-disk layout of the cache dir (`tantivy/` and `manifest.json`), the schema and
//! its version, atomic manifest writes.
//! Must not: decide what is indexed (see `config`/`walk`) or rank anything (see `retrieve`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tantivy::directory::error::{
    DeleteError, LockError, OpenDirectoryError, OpenReadError, OpenWriteError,
};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{TantivyDocument, Term};

use crate::extract::FileData;
use crate::walk::SkipReason;
use crate::{Error, Result};

/// Bump when the schema, the extraction or the redaction changes meaning: a store written with
/// another version is rebuilt from scratch.
pub(crate) const STORE_VERSION: u32 = 1;

/// The `kind` of a tantivy document.
pub(crate) const KIND_CHUNK: &str = "chunk";
pub(crate) const KIND_DEF: &str = "def";
pub(crate) const KIND_FILE: &str = "file";

/// The schema's fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// `chunk` | `def` | `file` (raw, indexed).
    pub kind: Field,
    /// Workspace-relative path (raw, indexed, stored): deletion and exclusion by path.
    pub path: Field,
    /// Chunk identifier tokens (pre-tokenized, with frequencies; BM25).
    pub tokens: Field,
    /// Chunk text, rendered definition (doc + signature), or a file's import lines (stored).
    pub text: Field,
    /// 0-based first line (chunk) or name line (definition).
    pub line: Field,
    /// 0-based line after a chunk.
    pub end_line: Field,
    /// Definition name, exact (raw, indexed, stored).
    pub name: Field,
    /// Definition name, lowercased (raw, indexed): `workspace/symbol`.
    pub name_lower: Field,
    /// Definition kind: function, class… (stored).
    pub def_kind: Field,
    /// Definition signature (stored).
    pub signature: Field,
    /// Enclosing definition's name (stored).
    pub container: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let tokens = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        kind: builder.add_text_field("kind", STRING),
        path: builder.add_text_field("path", STRING | STORED),
        tokens: builder.add_text_field("tokens", tokens),
        text: builder.add_text_field("text", STORED),
        line: builder.add_u64_field("line", STORED),
        end_line: builder.add_u64_field("end_line", STORED),
        name: builder.add_text_field("name", STRING | STORED),
        name_lower: builder.add_text_field("name_lower", STRING),
        def_kind: builder.add_text_field("def_kind", STORED),
        signature: builder.add_text_field("signature", STORED),
        container: builder.add_text_field("container", STORED),
    };
    (builder.build(), fields)
}

/// A pre-tokenized field value from a token list.
pub(crate) fn pre_tokenized(tokens: &[String]) -> PreTokenizedString {
    PreTokenizedString {
        text: String::new(),
        tokens: tokens
            .iter()
            .enumerate()
            .map(|(position, text)| Token {
                offset_from: 0,
                offset_to: 0,
                position,
                text: text.clone(),
                position_length: 1,
            })
            .collect(),
    }
}

/// The tantivy documents of one file.
pub(crate) fn documents(fields: &Fields, rel: &str, data: &FileData) -> Vec<TantivyDocument> {
    let mut docs = Vec::with_capacity(1 + data.defs.len() + data.chunks.len());
    let mut file = TantivyDocument::default();
    file.add_text(fields.kind, KIND_FILE);
    file.add_text(fields.path, rel);
    file.add_text(fields.text, data.imports.join("\n"));
    docs.push(file);
    for def in &data.defs {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.kind, KIND_DEF);
        doc.add_text(fields.path, rel);
        doc.add_text(fields.name, &def.name);
        doc.add_text(fields.name_lower, def.name.to_lowercase());
        doc.add_text(fields.def_kind, &def.kind);
        doc.add_text(fields.signature, &def.signature);
        doc.add_text(fields.text, def.render());
        doc.add_u64(fields.line, u64::from(def.line));
        if let Some(container) = &def.container {
            doc.add_text(fields.container, container);
        }
        docs.push(doc);
    }
    for chunk in &data.chunks {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.kind, KIND_CHUNK);
        doc.add_text(fields.path, rel);
        doc.add_pre_tokenized_text(fields.tokens, pre_tokenized(&chunk.tokens));
        doc.add_text(fields.text, &chunk.text);
        doc.add_u64(fields.line, u64::from(chunk.start_line));
        doc.add_u64(fields.end_line, u64::from(chunk.end_line));
        docs.push(doc);
    }
    docs
}

pub(crate) fn path_term(fields: &Fields, rel: &str) -> Term {
    Term::from_field_text(fields.path, rel)
}

/// What the manifest knows about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry {
    pub mtime_ns: u64,
    pub size: u64,
    /// FNV-1a of the content (0 when skipped before reading).
    pub hash: u64,
    #[serde(default)]
    pub chunks: u32,
    #[serde(default)]
    pub defs: u32,
    #[serde(default)]
    pub imports: u32,
    /// Set when the file was looked at but not indexed (binary, minified, unreadable…): an
    /// unchanged skipped file is not read again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipReason>,
}

/// The manifest: every file looked at, and the tantivy commit it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    /// The opstamp of the tantivy commit this manifest was written after.
    pub opstamp: u64,
    pub files: BTreeMap<String, FileEntry>,
}

pub(crate) fn manifest_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("manifest.json")
}

pub(crate) fn tantivy_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("tantivy")
}

/// The manifest in `cache_dir`, or `None` when absent or unreadable (the store is then rebuilt).
pub(crate) fn load_manifest(cache_dir: &Path) -> Option<Manifest> {
    let path = manifest_path(cache_dir);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(manifest) => Some(manifest),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "unreadable index manifest; rebuilding");
            None
        }
    }
}

/// Writes a serialized manifest atomically (temporary file, then rename).
pub(crate) fn save_manifest_bytes(cache_dir: &Path, bytes: &[u8]) -> Result<()> {
    let path = manifest_path(cache_dir);
    let tmp = cache_dir.join("manifest.json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::io(format!("renaming {} into place", tmp.display()), e))
}

/// Bytes used by the files under `dir` (not following symlinks).
pub(crate) fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// The tantivy directory of the store: tantivy's mmap directory without `fsync`.
///
/// A commit of one small file costs ~10 `fsync`s — 50–130 ms on the machines measured, over the
/// 50 ms an update may take. The store is a cache of the workspace: after a crash, a damaged
/// store is detected on open (tantivy's per-file checksums) and rebuilt, and the manifest is
/// only ever written after the commit it describes, so nothing worse than a reindex can
/// happen.
#[derive(Debug, Clone)]
pub(crate) struct NoSyncDirectory {
    inner: MmapDirectory,
    root: PathBuf,
    /// Set once the temporary files of dead writers were removed (on the first atomic write).
    swept: Arc<std::sync::atomic::AtomicBool>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl NoSyncDirectory {
    pub(crate) fn open(root: &Path) -> Result<NoSyncDirectory, OpenDirectoryError> {
        Ok(NoSyncDirectory {
            inner: MmapDirectory::open(root)?,
            root: root.to_path_buf(),
            swept: Arc::default(),
        })
    }
}

/// The writer's pid in an atomic write's temporary file name (`.{name}.{pid}.{n}.tmp`).
fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let _counter: u64 = parts.next()?.parse().ok()?;
    parts.next()?.parse().ok()
}

/// Removes the atomic-write temporary files in `dir` left by writers that were killed between
/// writing and renaming (one per kill otherwise piles up). Only files of processes that are gone
/// are touched; where liveness cannot be told (no `/proc`), nothing is.
pub(crate) fn remove_dead_writers_temp_files(dir: &Path) -> usize {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return 0;
    }
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_file_pid) else {
            continue;
        };
        if pid != own && !proc.join(pid.to_string()).exists() {
            removed += usize::from(std::fs::remove_file(entry.path()).is_ok());
        }
    }
    removed
}

/// A file writer whose `terminate` flushes but does not sync.
struct UnsyncedFile(File);

impl Write for UnsyncedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl TerminatingWrite for UnsyncedFile {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.0.flush()
    }
}

impl Directory for NoSyncDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.root.join(path))
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    OpenWriteError::FileAlreadyExists(path.to_path_buf())
                } else {
                    OpenWriteError::wrap_io_error(e, path.to_path_buf())
                }
            })?;
        Ok(BufWriter::new(Box::new(UnsyncedFile(file))))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // Only the writer (holding the index lock) writes: the first time, sweep what killed
        // writers left.
        if !self.swept.swap(true, Ordering::Relaxed) {
            let removed = remove_dead_writers_temp_files(&self.root);
            if removed > 0 {
                tracing::info!(removed, "removed temporary files of killed index writers");
            }
        }
        let target = self.root.join(path);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = self.root.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &target).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_names() {
        assert_eq!(temp_file_pid("..managed.json.14303.19.tmp"), Some(14303));
        assert_eq!(temp_file_pid(".meta.json.7.0.tmp"), Some(7));
        assert_eq!(temp_file_pid("meta.json"), None);
        assert_eq!(temp_file_pid(".x.tmp"), None);
        assert_eq!(temp_file_pid(".a.b.c.tmp"), None);
    }

    #[test]
    fn sweeps_only_dead_writers_files() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir
            .path()
            .join(format!("..managed.json.{}.3.tmp", u32::MAX - 1));
        let live = dir
            .path()
            .join(format!("..managed.json.{}.4.tmp", std::process::id()));
        let other = dir.path().join("meta.json");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(remove_dead_writers_temp_files(dir.path()), 1);
        assert!(!dead.exists() && live.exists() && other.exists());
    }
}
