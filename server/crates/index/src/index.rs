//! [`Index`]: the handle the server holds — open, refresh, incremental updates, statistics.
//!
//! Owns: the tantivy index, reader and writer; the in-memory manifest; the locking discipline
//! (one refresh at a time; per-file apply under a short lock; commits under the writer's write
//! lock; searches on reader snapshots that need no lock at all).
//! Must not: hold any lock for a whole scan (files are read and parsed with no lock held, and
//! each file's documents are applied under a lock held for that file only), or keep file texts
//! after they are applied.

use std::collections::{HashSet, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tantivy::indexer::LogMergePolicy;
use tantivy::{
    IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError,
};

use crate::config::{FileFilter, IndexConfig};
use crate::extract;
use crate::redact::redact;
use crate::retrieve::{self, Query, RetrievedSnippet, Retriever};
use crate::store::{self, Fields, FileEntry, Manifest, NoSyncDirectory, STORE_VERSION};
use crate::walk::{self, Candidate, SkipReason};
use crate::{Error, Result};

/// The writer's indexing memory (tantivy's minimum per thread is 15 MB).
const WRITER_MEMORY_BYTES: usize = 16 * 1024 * 1024;
/// Segments under this many documents form the lowest merge layer.
const MERGE_MIN_LAYER_DOCS: u32 = 100;
/// During a refresh, what is indexed so far becomes searchable at least this often.
const COMMIT_INTERVAL: Duration = Duration::from_secs(2);

/// Where a refresh is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Walking the workspace (`total` not known yet).
    Scanning,
    /// Reading and indexing the files that changed: `done` of `total`.
    Indexing,
    /// Finished.
    Done,
}

/// A progress report from [`Index::refresh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    pub done: usize,
    pub total: usize,
}

/// Files skipped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SkipCounts {
    pub excluded: usize,
    pub secret: usize,
    pub too_large: usize,
    pub binary: usize,
    pub minified: usize,
    pub special: usize,
    pub unreadable: usize,
}

impl SkipCounts {
    pub(crate) fn add(&mut self, reason: SkipReason) {
        let slot = match reason {
            SkipReason::Excluded => &mut self.excluded,
            SkipReason::Secret => &mut self.secret,
            SkipReason::TooLarge => &mut self.too_large,
            SkipReason::Binary => &mut self.binary,
            SkipReason::Minified => &mut self.minified,
            SkipReason::Special => &mut self.special,
            SkipReason::Unreadable => &mut self.unreadable,
        };
        *slot += 1;
    }

    /// All skipped files.
    pub fn total(&self) -> usize {
        self.excluded
            + self.secret
            + self.too_large
            + self.binary
            + self.minified
            + self.special
            + self.unreadable
    }
}

/// What one [`Index::refresh`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// Files (re)indexed because they are new or their content changed.
    pub indexed: usize,
    /// Files whose mtime or size changed but whose content did not, or that did not change.
    pub unchanged: usize,
    /// Files removed from the index (deleted, renamed away, newly excluded).
    pub removed: usize,
    /// Files skipped, by reason (this refresh's walk and reads).
    pub skipped: SkipCounts,
    pub elapsed_ms: u64,
}

/// What [`Index::update_file`] did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FileStatus {
    Indexed,
    /// Same content as indexed.
    Unchanged,
    /// No longer on disk: removed from the index.
    Removed,
    /// Not indexed (and removed from the index if it was).
    Skipped(SkipReason),
}

/// Index statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Files indexed.
    pub files: usize,
    /// Bytes of source in the indexed files.
    pub source_bytes: u64,
    pub chunks: usize,
    pub definitions: usize,
    pub import_lines: usize,
    /// Files looked at but not indexed (binary, minified, unreadable…), as recorded in the
    /// manifest; files skipped by the walk are in `last_refresh`.
    pub skipped_files: usize,
    /// Bytes the cache dir takes on disk.
    pub index_bytes: u64,
    /// Another process holds the index for writing; this handle only searches.
    pub read_only: bool,
    /// A refresh is running now.
    pub refreshing: bool,
    pub last_refresh: Option<RefreshReport>,
}

/// A definition, for `workspace/symbol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol {
    pub name: String,
    /// function, method, class, interface, type, constant, module, macro.
    pub kind: String,
    /// Workspace-relative, `/`-separated.
    pub path: String,
    /// 0-based line of the name.
    pub line: u32,
    /// Redacted.
    pub signature: String,
    /// The enclosing definition's name.
    pub container: Option<String>,
}

/// One file, read and extracted, ready to apply.
struct Processed {
    candidate: Candidate,
    /// The manifest entry the file was compared against.
    old: Option<FileEntry>,
    outcome: Outcome,
}

enum Outcome {
    Skipped(SkipReason),
    /// Same content as indexed: only the manifest's mtime/size change.
    Same,
    Indexed {
        hash: u64,
        docs: Vec<TantivyDocument>,
        counts: (u32, u32, u32),
    },
}

/// The workspace index. `Send + Sync`: share it in an `Arc`; searches run while a refresh or an
/// update is in progress and see what was committed so far.
pub struct Index {
    root: PathBuf,
    cache_dir: PathBuf,
    config: IndexConfig,
    filter: Arc<FileFilter>,
    fields: Fields,
    reader: IndexReader,
    /// `None` when another process holds the writer lock.
    writer: Option<RwLock<IndexWriter>>,
    manifest: RwLock<Manifest>,
    /// Manifest changed since the last commit.
    dirty: AtomicBool,
    refresh_lock: Mutex<()>,
    apply_lock: Mutex<()>,
    last_refresh: Mutex<Option<RefreshReport>>,
    /// Files re-read by [`Index::update_file`] (saved or changed on disk), most recent first,
    /// at most [`RECENT_FILES`]: retrieval ranks their chunks after open documents' and before
    /// the rest of the index's.
    recent: Mutex<VecDeque<String>>,
}

/// Recently edited files remembered for ranking.
pub const RECENT_FILES: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Opens the tantivy index and manifest in `cache_dir` when they are present, of this version,
/// consistent and undamaged, with a working reader; `None` means "rebuild".
fn open_existing(
    tantivy_dir: &Path,
    schema: &tantivy::schema::Schema,
    manifest: Option<Manifest>,
) -> Option<(tantivy::Index, Manifest)> {
    let manifest = manifest.filter(|m| m.version == STORE_VERSION)?;
    let directory = NoSyncDirectory::open(tantivy_dir).ok()?;
    let index = tantivy::Index::open(directory)
        .inspect_err(|err| tracing::warn!(%err, "cannot open the index store; rebuilding"))
        .ok()?;
    if index.schema() != *schema {
        tracing::info!("index schema changed; rebuilding");
        return None;
    }
    let opstamp = index.load_metas().ok()?.opstamp;
    if opstamp < manifest.opstamp {
        tracing::warn!("index store older than its manifest; rebuilding");
        return None;
    }
    // Commits are not fsynced (see `NoSyncDirectory`): check every file after a crash.
    match index.validate_checksum() {
        Ok(damaged) if damaged.is_empty() => {}
        Ok(damaged) => {
            tracing::warn!(files = damaged.len(), "index store damaged; rebuilding");
            return None;
        }
        Err(err) => {
            tracing::warn!(%err, "index store unreadable; rebuilding");
            return None;
        }
    }
    Some((index, manifest))
}

impl Index {
    /// Opens the index of `root` stored in `cache_dir` (created if needed). Nothing is scanned:
    /// what was persisted is searchable at once; call [`refresh`](Self::refresh) to catch up
    /// with the disk. When another process is writing the same cache dir, the handle is
    /// read-only ([`Stats::read_only`]).
    pub fn open(root: &Path, cache_dir: &Path, config: IndexConfig) -> Result<Index> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| Error::io(format!("opening workspace root {}", root.display()), e))?;
        std::fs::create_dir_all(cache_dir)
            .map_err(|e| Error::io(format!("creating {}", cache_dir.display()), e))?;
        let cache_dir = std::fs::canonicalize(cache_dir)
            .map_err(|e| Error::io(format!("opening {}", cache_dir.display()), e))?;
        let filter = Arc::new(FileFilter::new(&config)?);
        let (schema, fields) = store::schema();
        let tantivy_dir = store::tantivy_dir(&cache_dir);
        let existing = open_existing(&tantivy_dir, &schema, store::load_manifest(&cache_dir));
        let (store_index, manifest) = match existing {
            Some(found) => found,
            None => {
                if tantivy_dir.exists() {
                    std::fs::remove_dir_all(&tantivy_dir)
                        .map_err(|e| Error::io(format!("clearing {}", tantivy_dir.display()), e))?;
                }
                std::fs::create_dir_all(&tantivy_dir)
                    .map_err(|e| Error::io(format!("creating {}", tantivy_dir.display()), e))?;
                let directory = NoSyncDirectory::open(&tantivy_dir)
                    .map_err(|e| Error::store("opening the index directory", e))?;
                let index = tantivy::Index::create(directory, schema, IndexSettings::default())
                    .map_err(|e| Error::store("creating the index", e))?;
                let manifest = Manifest {
                    version: STORE_VERSION,
                    ..Manifest::default()
                };
                (index, manifest)
            }
        };
        let writer = match store_index.writer_with_num_threads(1, WRITER_MEMORY_BYTES) {
            Ok(writer) => {
                // Small layers: the one-file segments of `update_file` merge among
                // themselves instead of dragging the big segments of a full index along.
                let mut policy = LogMergePolicy::default();
                policy.set_min_layer_size(MERGE_MIN_LAYER_DOCS);
                writer.set_merge_policy(Box::new(policy));
                Some(RwLock::new(writer))
            }
            Err(TantivyError::LockFailure(..)) => {
                tracing::warn!(cache = %cache_dir.display(), "index locked by another process; read-only");
                None
            }
            Err(e) => return Err(Error::store("opening the index writer", e)),
        };
        let policy = if writer.is_some() {
            ReloadPolicy::Manual
        } else {
            ReloadPolicy::OnCommitWithDelay
        };
        let reader = store_index
            .reader_builder()
            .reload_policy(policy)
            .try_into()
            .map_err(|e| Error::store("opening the index reader", e))?;
        Ok(Index {
            root,
            cache_dir,
            config,
            filter,
            fields,
            reader,
            writer,
            manifest: RwLock::new(manifest),
            dirty: AtomicBool::new(false),
            refresh_lock: Mutex::new(()),
            apply_lock: Mutex::new(()),
            last_refresh: Mutex::new(None),
            recent: Mutex::new(VecDeque::new()),
        })
    }

    /// The workspace root (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The workspace's name: its root folder's (what a repository-format prompt opens with).
    pub fn name(&self) -> Option<String> {
        self.root
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
    }

    /// The cache dir (canonical).
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn writer(&self) -> Result<&RwLock<IndexWriter>> {
        self.writer
            .as_ref()
            .ok_or_else(|| Error::ReadOnly(self.cache_dir.clone()))
    }

    /// Brings the index up to date with the disk: new and changed files are indexed (changes
    /// detected by mtime and size, confirmed by content hash), deleted and newly excluded ones
    /// removed. Files are read and parsed on up to `threads` worker threads with no lock held;
    /// progress is reported on the calling thread; what is indexed so far is committed (and
    /// so searchable) every couple of seconds. One refresh runs at a time; a second call waits.
    pub fn refresh(&self, progress: &mut impl FnMut(Progress)) -> Result<RefreshReport> {
        let writer = self.writer()?;
        let _refreshing = lock(&self.refresh_lock);
        let started = Instant::now();
        progress(Progress {
            phase: Phase::Scanning,
            done: 0,
            total: 0,
        });
        let max = self.config.max_file_bytes;
        let walked = walk::walk(&self.root, &self.cache_dir, &self.filter, max);
        let mut report = RefreshReport::default();
        for (_, reason) in &walked.skipped {
            report.skipped.add(*reason);
        }
        // Plan: what changed since the manifest was written.
        let mut plan: Vec<(Candidate, Option<FileEntry>)> = Vec::new();
        let removed: Vec<String> = {
            let manifest = read(&self.manifest);
            let mut seen = HashSet::with_capacity(walked.files.len());
            for candidate in walked.files {
                seen.insert(candidate.rel.clone());
                let old = manifest.files.get(&candidate.rel);
                match old {
                    Some(e) if e.mtime_ns == candidate.mtime_ns && e.size == candidate.size => {
                        if let Some(reason) = e.skipped {
                            report.skipped.add(reason);
                        } else {
                            report.unchanged += 1;
                        }
                    }
                    _ => plan.push((candidate, old.cloned())),
                }
            }
            manifest
                .files
                .keys()
                .filter(|k| !seen.contains(k.as_str()))
                .cloned()
                .collect()
        };
        for rel in &removed {
            if self.remove_entry(writer, rel)? {
                report.removed += 1;
            }
        }

        let total = plan.len();
        progress(Progress {
            phase: Phase::Indexing,
            done: 0,
            total,
        });
        let threads = match self.config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            n => n,
        };
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::sync_channel::<Processed>(threads * 2);
        let plan = &plan;
        let outcome: Result<()> = std::thread::scope(|scope| {
            for _ in 0..threads {
                let tx = tx.clone();
                let next = &next;
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((candidate, old)) = plan.get(i) else {
                            break;
                        };
                        let processed = self.process(candidate, old.as_ref());
                        if tx.send(processed).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut last_commit = Instant::now();
            for (i, processed) in rx.into_iter().enumerate() {
                match self.apply(writer, processed, true)? {
                    FileStatus::Indexed => report.indexed += 1,
                    FileStatus::Skipped(reason) => report.skipped.add(reason),
                    FileStatus::Unchanged | FileStatus::Removed => report.unchanged += 1,
                }
                progress(Progress {
                    phase: Phase::Indexing,
                    done: i + 1,
                    total,
                });
                if last_commit.elapsed() >= COMMIT_INTERVAL {
                    self.commit(writer)?;
                    last_commit = Instant::now();
                }
            }
            Ok(())
        });
        // Commit whatever was applied, even when a later file failed.
        self.commit(writer)?;
        outcome?;
        report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress(Progress {
            phase: Phase::Done,
            done: total,
            total,
        });
        tracing::info!(
            indexed = report.indexed,
            unchanged = report.unchanged,
            removed = report.removed,
            skipped = report.skipped.total(),
            elapsed_ms = report.elapsed_ms,
            "index refreshed"
        );
        *lock(&self.last_refresh) = Some(report.clone());
        Ok(report)
    }

    /// Re-reads one file (after `didSave` or a watched-file change) and commits. A file that is
    /// gone is removed; one that is now excluded, secret, binary or too large is removed and
    /// reported as skipped. `path` is absolute or relative to the root.
    pub fn update_file(&self, path: &Path) -> Result<FileStatus> {
        let writer = self.writer()?;
        let rel = self.relative_path(path)?;
        let abs = self.root.join(&rel);
        if let Err(e) = std::fs::symlink_metadata(&abs)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            if self.remove_entry(writer, &rel)? {
                self.commit(writer)?;
            }
            return Ok(FileStatus::Removed);
        }
        let status = match walk::inspect(&self.root, &abs, &self.filter, self.config.max_file_bytes)
        {
            Ok(candidate) => {
                let old = read(&self.manifest).files.get(&rel).cloned();
                let processed = self.process(&candidate, old.as_ref());
                self.apply(writer, processed, false)?
            }
            Err((_, reason)) => {
                self.remove_entry(writer, &rel)?;
                FileStatus::Skipped(reason)
            }
        };
        self.commit(writer)?;
        self.touch_recent(&rel, matches!(status, FileStatus::Skipped(_)));
        Ok(status)
    }

    /// Moves `rel` to the front of the recently edited files (or drops it).
    fn touch_recent(&self, rel: &str, drop: bool) {
        let mut recent = lock(&self.recent);
        recent.retain(|p| p != rel);
        if !drop {
            recent.push_front(rel.to_owned());
            recent.truncate(RECENT_FILES);
        }
    }

    /// Workspace-relative paths of the files most recently re-read by [`Index::update_file`],
    /// most recent first.
    pub fn recently_edited(&self) -> Vec<String> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// Removes one file from the index (deleted or renamed away) and commits. Returns whether
    /// it was indexed. `path` is absolute or relative to the root.
    pub fn remove_file(&self, path: &Path) -> Result<bool> {
        let writer = self.writer()?;
        let rel = self.relative_path(path)?;
        let removed = self.remove_entry(writer, &rel)?;
        if removed {
            self.commit(writer)?;
        }
        self.touch_recent(&rel, true);
        Ok(removed)
    }

    /// Context for a cursor: see [`Query`] and [`RetrievedSnippet`]. Never blocks on a refresh
    /// (it searches the last committed state); errors are logged and yield fewer snippets.
    pub fn retrieve(&self, query: &Query<'_>) -> Vec<RetrievedSnippet> {
        let searcher = self.reader.searcher();
        let retriever = Retriever {
            searcher: &searcher,
            fields: &self.fields,
            manifest: &self.manifest,
            current: self.query_path(query.path),
            open: query
                .open_files
                .iter()
                .map(|(p, t)| (self.query_path(p), t.as_str()))
                .collect(),
            recent: self.recently_edited(),
        };
        retrieve::retrieve(&retriever, query)
    }

    /// Definitions whose name matches `query` (case-insensitive: exact, then prefix, then
    /// substring, then subsequence), at most `limit`, deterministic order. An empty query lists
    /// definitions by name.
    pub fn workspace_symbols(&self, query: &str, limit: usize) -> Vec<Symbol> {
        let searcher = self.reader.searcher();
        retrieve::symbols(&searcher, &self.fields, query, limit)
            .inspect_err(|err| tracing::warn!(%err, "workspace symbol search failed"))
            .unwrap_or_default()
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        {
            let manifest = read(&self.manifest);
            for entry in manifest.files.values() {
                if entry.skipped.is_some() {
                    stats.skipped_files += 1;
                    continue;
                }
                stats.files += 1;
                stats.source_bytes += entry.size;
                stats.chunks += entry.chunks as usize;
                stats.definitions += entry.defs as usize;
                stats.import_lines += entry.imports as usize;
            }
        }
        stats.index_bytes = store::disk_usage(&self.cache_dir);
        stats.read_only = self.writer.is_none();
        stats.refreshing = self.refresh_lock.try_lock().is_err();
        stats.last_refresh = lock(&self.last_refresh).clone();
        stats
    }

    /// Reads and extracts one file (no lock held).
    fn process(&self, candidate: &Candidate, old: Option<&FileEntry>) -> Processed {
        let outcome = match walk::read(candidate, self.config.max_file_bytes) {
            Err(reason) => Outcome::Skipped(reason),
            Ok((_, hash)) if old.is_some_and(|e| e.hash == hash && e.skipped.is_none()) => {
                Outcome::Same
            }
            Ok((text, hash)) => {
                let redacted = redact(&text);
                let data = extract::extract(&candidate.rel, &redacted);
                let counts = (
                    data.chunks.len() as u32,
                    data.defs.len() as u32,
                    data.imports.len() as u32,
                );
                Outcome::Indexed {
                    hash,
                    docs: store::documents(&self.fields, &candidate.rel, &data),
                    counts,
                }
            }
        };
        Processed {
            candidate: candidate.clone(),
            old: old.cloned(),
            outcome,
        }
    }

    /// Applies one processed file: replaces its documents and its manifest entry. With
    /// `check_unchanged`, does nothing when the manifest entry changed since the file was
    /// compared against it (an `update_file` got there first with newer content).
    fn apply(
        &self,
        writer: &RwLock<IndexWriter>,
        processed: Processed,
        check_unchanged: bool,
    ) -> Result<FileStatus> {
        let _applying = lock(&self.apply_lock);
        let Processed {
            candidate,
            old: expected,
            outcome,
        } = processed;
        let old = read(&self.manifest).files.get(&candidate.rel).cloned();
        if check_unchanged && old != expected {
            return Ok(FileStatus::Unchanged);
        }
        let term = store::path_term(&self.fields, &candidate.rel);
        let (entry, status) = match outcome {
            Outcome::Skipped(reason) => {
                read(writer).delete_term(term);
                let entry = FileEntry {
                    mtime_ns: candidate.mtime_ns,
                    size: candidate.size,
                    hash: 0,
                    chunks: 0,
                    defs: 0,
                    imports: 0,
                    skipped: Some(reason),
                };
                (entry, FileStatus::Skipped(reason))
            }
            Outcome::Same => {
                let Some(mut entry) = old else {
                    return Ok(FileStatus::Unchanged);
                };
                entry.mtime_ns = candidate.mtime_ns;
                entry.size = candidate.size;
                (entry, FileStatus::Unchanged)
            }
            Outcome::Indexed { hash, docs, counts } => {
                {
                    let writer = read(writer);
                    writer.delete_term(term);
                    for doc in docs {
                        writer
                            .add_document(doc)
                            .map_err(|e| Error::store("adding a document", e))?;
                    }
                }
                let entry = FileEntry {
                    mtime_ns: candidate.mtime_ns,
                    size: candidate.size,
                    hash,
                    chunks: counts.0,
                    defs: counts.1,
                    imports: counts.2,
                    skipped: None,
                };
                (entry, FileStatus::Indexed)
            }
        };
        write(&self.manifest).files.insert(candidate.rel, entry);
        self.dirty.store(true, Ordering::Release);
        Ok(status)
    }

    /// Deletes a file's documents and manifest entry; whether it had one.
    fn remove_entry(&self, writer: &RwLock<IndexWriter>, rel: &str) -> Result<bool> {
        let _applying = lock(&self.apply_lock);
        let existed = write(&self.manifest).files.remove(rel).is_some();
        if existed {
            read(writer).delete_term(store::path_term(&self.fields, rel));
            self.dirty.store(true, Ordering::Release);
        }
        Ok(existed)
    }

    /// Commits pending changes, makes them searchable, and writes the manifest (after the
    /// commit, under the writer's lock, so manifests are written in commit order).
    fn commit(&self, writer: &RwLock<IndexWriter>) -> Result<()> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let mut writer = write(writer);
        let opstamp = writer.commit().map_err(|e| Error::store("committing", e))?;
        self.reader
            .reload()
            .map_err(|e| Error::store("reloading the reader", e))?;
        let bytes = {
            let mut manifest = write(&self.manifest);
            manifest.opstamp = opstamp;
            serde_json::to_vec(&*manifest)
                .map_err(|e| Error::io("serializing the manifest", std::io::Error::other(e)))?
        };
        store::save_manifest_bytes(&self.cache_dir, &bytes)
    }

    /// A caller's path as a workspace-relative one.
    fn relative_path(&self, path: &Path) -> Result<String> {
        let outside = || Error::OutsideRoot(path.to_path_buf());
        if path.is_absolute() {
            if let Some(rel) = walk::relative(&self.root, path) {
                return Ok(rel);
            }
            // The root is canonical; the path may not be (symlinked temp dirs…).
            let parent = path.parent().ok_or_else(outside)?;
            let name = path.file_name().ok_or_else(outside)?;
            let parent = std::fs::canonicalize(parent).map_err(|_| outside())?;
            return walk::relative(&self.root, &parent.join(name)).ok_or_else(outside);
        }
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(outside());
        }
        walk::relative(Path::new(""), path).ok_or_else(outside)
    }

    /// A query's path as the index names it (unchanged when outside the root).
    fn query_path(&self, path: &str) -> String {
        self.relative_path(Path::new(path))
            .unwrap_or_else(|_| path.replace('\\', "/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Index>();
    }
}
