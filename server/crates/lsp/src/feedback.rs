//! Feedback: which suggestions were shown and what became of them (accepted, partly accepted,
//! dismissed), recorded on this machine as versioned JSON lines (format: docs/feedback.md).
//!
//! Owns: the record format ([`SuggestionRecord`]), where the file lives ([`feedback_dir`]), the
//! background writer (bounded channel, size-bounded rotation), the per-document tracking of the
//! suggestion on show ([`Tracker`]: how much of it the document holds now) and the readers
//! ([`read_records`], [`read_accepted`] for `moat dataset build --feedback`).
//! Must not: block the LSP task (a full channel drops the record and counts it; the file is only
//! touched on the writer thread), write source text unless `feedbackSourceText` is on, or write
//! anything when feedback is off (`feedback: false`, `MOAT_FEEDBACK=0`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moat_text::Document;
use serde::{Deserialize, Serialize};

/// The format version written in every record's `v`. Readers skip records of a newer version.
pub const FORMAT_VERSION: u32 = 1;
/// `MOAT_FEEDBACK=0` (or `off`, `false`, `no`) turns recording off whatever the settings say.
pub const ENV_SWITCH: &str = "MOAT_FEEDBACK";
/// `MOAT_FEEDBACK_DIR`: record into this folder instead of `<data dir>/feedback`.
pub const ENV_DIR: &str = "MOAT_FEEDBACK_DIR";
/// The file records are appended to; rotated ones are `feedback.1.jsonl` (newest) … `.N`.
pub const FILE_NAME: &str = "feedback.jsonl";
/// A file is rotated before it grows past this.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Rotated files kept: at most (1 + this) × [`MAX_FILE_BYTES`] on disk.
pub const KEEP_ROTATED: usize = 2;
/// The command a suggestion's item carries; clients run it when the user accepts the item.
pub const ACCEPT_COMMAND: &str = "moat.suggestionAccepted";
/// Records waiting for the writer; more are dropped (and counted in a `dropped` record).
const CHANNEL_CAPACITY: usize = 1024;
/// With source text on: this much of the document before and after the suggestion is kept.
const PREFIX_BYTES: usize = 4096;
const SUFFIX_BYTES: usize = 1024;

/// Whether the environment turns feedback off (`MOAT_FEEDBACK=0|off|false|no`).
pub fn disabled_by_env() -> bool {
    std::env::var(ENV_SWITCH).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false" | "no"
        )
    })
}

/// Where feedback is recorded: `$MOAT_FEEDBACK_DIR`, else `<data dir>/feedback` (the data dir is
/// `$MOAT_HOME`, else `${XDG_DATA_HOME:-~/.local/share}/moat`).
pub fn feedback_dir() -> Option<PathBuf> {
    match std::env::var_os(ENV_DIR) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => Some(moat_model::data_dir()?.join("feedback")),
    }
}

/// What became of a shown suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All of it was inserted (the item's command ran, or the document holds it whole).
    Accepted,
    /// Its first words were kept (word-by-word accept, or typed through and then left).
    Partial,
    /// Replaced by other text, or still not in the document when it was given up.
    Dismissed,
}

/// How the outcome was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// The client ran the item's command ([`ACCEPT_COMMAND`]): the user accepted it.
    Command,
    /// The next request for the document: the text at the suggestion's place was compared.
    NextRequest,
    /// The document was closed: compared then.
    Close,
    /// The server shut down: compared then.
    Shutdown,
}

/// Which request showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// `textDocument/inlineCompletion` (ghost text).
    Inline,
    /// `textDocument/completion` (a menu item).
    Completion,
}

/// Source text around an accepted suggestion, recorded only with `feedbackSourceText` on
/// (redacted like repository context: secrets become `<redacted>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceText {
    /// The document's path relative to its workspace folder.
    pub path: String,
    /// Up to 4 KiB of the document before the suggestion (as it was when shown).
    pub prefix: String,
    /// Up to 1 KiB after it.
    pub suffix: String,
    /// The suggestion as shown.
    pub text: String,
}

/// One line of the file per shown suggestion, written once its outcome is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionRecord {
    pub v: u32,
    /// Always `"suggestion"`.
    pub kind: String,
    /// When the outcome was decided, Unix time in milliseconds.
    pub ts_ms: u64,
    /// One server process.
    pub session: String,
    /// The suggestion within the session (the id its item's command carries).
    pub id: u64,
    pub method: Method,
    /// The editor (`clientInfo.name`), if it said.
    pub client: Option<String>,
    /// The document's LSP `languageId`.
    pub language: String,
    /// The model's name (its manifest's `name`).
    pub model: Option<String>,
    pub outcome: Outcome,
    pub signal: Signal,
    /// From the request to the answer (what the user waited).
    pub latency_ms: u64,
    /// Prompt size in tokens and repository snippets in it, when the server reported them.
    pub prompt_tokens: Option<u64>,
    pub snippets: Option<u64>,
    /// Size of the shown suggestion (characters, lines) and how many of its characters were kept.
    pub shown_chars: u64,
    pub shown_lines: u64,
    pub accepted_chars: u64,
    /// From showing it to knowing its outcome.
    pub decided_after_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceText>,
}

/// Written when records were dropped because the writer fell behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedRecord {
    pub v: u32,
    /// Always `"dropped"`.
    pub kind: String,
    pub ts_ms: u64,
    pub count: u64,
}

/// A line of the file, as read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Suggestion(Box<SuggestionRecord>),
    Dropped(DroppedRecord),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The longest prefix of `shown` that the document holds at `origin`, in bytes, and of that what
/// counts as kept: a word the document goes on differently (`leasex` for `lease()`) is not.
fn matching_bytes(doc: &Document, origin: usize, shown: &str) -> (usize, usize) {
    if !doc.is_char_boundary(origin) {
        return (0, 0);
    }
    let after = doc.slice(origin..origin + shown.len());
    let mut n = 0;
    for (a, b) in shown.chars().zip(after.chars()) {
        if a != b {
            break;
        }
        n += a.len_utf8();
    }
    let mut kept = n;
    let doc_next = after.get(n..).and_then(|rest| rest.chars().next());
    if n < shown.len() && doc_next.is_some_and(is_word_char) {
        while let Some(c) = shown[..kept]
            .chars()
            .next_back()
            .filter(|c| is_word_char(*c))
        {
            kept -= c.len_utf8();
        }
    }
    (n, kept)
}

fn kept_bytes(doc: &Document, origin: usize, shown: &str) -> usize {
    matching_bytes(doc, origin, shown).1
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `kept` (bytes of `shown`) cut back to a word boundary: keeping "ret" of "return x" is typing
/// over the suggestion, not taking part of it.
fn whole_words(shown: &str, kept: usize) -> usize {
    if kept >= shown.len() {
        return shown.len();
    }
    let mut k = kept;
    while k > 0 {
        let before = shown[..k].chars().next_back();
        let after = shown[k..].chars().next();
        match (before, after) {
            (Some(b), Some(a)) if is_word_char(b) && is_word_char(a) => {
                k -= b.len_utf8();
            }
            _ => break,
        }
    }
    k
}

/// The outcome when the document holds `kept` bytes of `shown` at its place.
pub fn judge(shown: &str, kept: usize) -> (Outcome, usize) {
    if kept >= shown.len() && !shown.is_empty() {
        return (Outcome::Accepted, shown.chars().count());
    }
    let k = whole_words(shown, kept);
    if shown[..k].trim().is_empty() {
        (Outcome::Dismissed, 0)
    } else {
        (Outcome::Partial, shown[..k].chars().count())
    }
}

/// What is known about a suggestion when it is shown.
#[derive(Debug, Clone)]
pub struct Shown {
    pub method: Method,
    pub language: String,
    pub model: Option<String>,
    pub latency: Duration,
    pub prompt_tokens: Option<u64>,
    pub snippets: Option<u64>,
    /// Byte offset of the suggestion's start in the document when shown.
    pub origin: usize,
    /// The suggestion (kept in memory to compare; written only with source text on).
    pub text: String,
    /// Set when source text is recorded.
    pub source: Option<SourceText>,
}

struct Pending {
    id: u64,
    shown: Shown,
    at: Instant,
}

/// How the document stands against a document's pending suggestion, taken when a request
/// arrives (before anything can change it).
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    id: u64,
    /// Bytes of the suggestion the document holds at its place (typed through, or inserted).
    typed: usize,
    /// Of those, the ones that count as kept (whole words).
    kept: usize,
}

/// Tracks the suggestion on show in each document and decides its outcome. Thread-safe; every
/// method is a short critical section (no IO).
pub struct Tracker {
    pending: Mutex<HashMap<String, Pending>>,
    next_id: AtomicU64,
    session: String,
    client: Mutex<Option<String>>,
    sink: Sink,
}

impl Tracker {
    /// A tracker writing to `dir` (created on the first record); `None` records nothing.
    pub fn new(dir: Option<PathBuf>) -> Tracker {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Tracker {
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            session: format!(
                "{:x}-{:x}",
                start.as_secs(),
                std::process::id() ^ start.subsec_nanos()
            ),
            client: Mutex::new(None),
            sink: Sink::new(dir),
        }
    }

    /// The server's default: the environment's switch and folder.
    pub fn from_env() -> Tracker {
        Tracker::new(if disabled_by_env() {
            None
        } else {
            feedback_dir()
        })
    }

    /// Whether anything can be recorded (not turned off by the environment).
    pub fn available(&self) -> bool {
        self.sink.dir.is_some()
    }

    pub fn set_client(&self, name: Option<String>) {
        if let Ok(mut c) = self.client.lock() {
            *c = name;
        }
    }

    /// Where the current document's suggestion stands in `text`; taken as a request arrives.
    pub fn snapshot(&self, doc_key: &str, doc: &Document) -> Option<Snapshot> {
        let pending = self.pending.lock().ok()?;
        let p = pending.get(doc_key)?;
        let (typed, kept) = matching_bytes(doc, p.shown.origin, &p.shown.text);
        Some(Snapshot {
            id: p.id,
            typed,
            kept,
        })
    }

    /// A request answered `answer` at byte `cursor` of `doc_key`. When that is the rest of the
    /// suggestion on show (typing through it), the suggestion stays on show and its id is
    /// returned; otherwise the one on show is decided from `before` (the document when the
    /// request arrived) and `answer`, if any, goes on show under a new id.
    pub fn answered(
        &self,
        doc_key: &str,
        before: Option<Snapshot>,
        cursor: usize,
        answer: Option<Shown>,
    ) -> Option<u64> {
        let decided = {
            let Ok(mut pending) = self.pending.lock() else {
                return None;
            };
            if let (Some(p), Some(snap), Some(new)) = (pending.get(doc_key), before, &answer)
                && p.id == snap.id
                && snap.typed < p.shown.text.len()
                && p.shown.origin + snap.typed == cursor
                && p.shown.text.get(snap.typed..) == Some(new.text.as_str())
            {
                return Some(p.id);
            }
            let old = match before {
                Some(snap) if pending.get(doc_key).is_some_and(|p| p.id == snap.id) => pending
                    .remove(doc_key)
                    .map(|p| (p, snap.kept, Signal::NextRequest)),
                _ => None,
            };
            let id = answer.map(|shown| {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                pending.insert(
                    doc_key.to_string(),
                    Pending {
                        id,
                        shown,
                        at: Instant::now(),
                    },
                );
                id
            });
            (old, id)
        };
        let (old, id) = decided;
        if let Some((p, kept, signal)) = old {
            self.decide(p, kept, signal);
        }
        id
    }

    /// The client ran the accept command for `id`; false when no suggestion on show has it.
    pub fn accepted(&self, id: u64) -> bool {
        let found = self.pending.lock().ok().and_then(|mut pending| {
            let key = pending
                .iter()
                .find(|(_, p)| p.id == id)
                .map(|(k, _)| k.clone())?;
            pending.remove(&key)
        });
        match found {
            Some(p) => {
                let all = p.shown.text.len();
                self.decide(p, all, Signal::Command);
                true
            }
            None => false,
        }
    }

    /// The document is closing (or the server shutting down): decide its suggestion on `text`.
    pub fn finish_document(&self, doc_key: &str, doc: Option<&Document>, signal: Signal) {
        let p = self
            .pending
            .lock()
            .ok()
            .and_then(|mut pending| pending.remove(doc_key));
        if let Some(p) = p {
            let kept = doc.map_or(0, |d| kept_bytes(d, p.shown.origin, &p.shown.text));
            self.decide(p, kept, signal);
        }
    }

    /// Documents with a suggestion on show.
    pub fn pending_documents(&self) -> Vec<String> {
        self.pending
            .lock()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets what is on show without recording it (feedback was turned off).
    pub fn clear(&self) {
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
    }

    fn decide(&self, p: Pending, kept: usize, signal: Signal) {
        let (outcome, accepted_chars) = judge(&p.shown.text, kept);
        let shown = p.shown;
        let record = SuggestionRecord {
            v: FORMAT_VERSION,
            kind: "suggestion".into(),
            ts_ms: now_ms(),
            session: self.session.clone(),
            id: p.id,
            method: shown.method,
            client: self.client.lock().ok().and_then(|c| c.clone()),
            language: shown.language,
            model: shown.model,
            outcome,
            signal,
            latency_ms: shown.latency.as_millis() as u64,
            prompt_tokens: shown.prompt_tokens,
            snippets: shown.snippets,
            shown_chars: shown.text.chars().count() as u64,
            shown_lines: shown.text.lines().count().max(1) as u64,
            accepted_chars: accepted_chars as u64,
            decided_after_ms: p.at.elapsed().as_millis() as u64,
            source: shown.source,
        };
        match serde_json::to_string(&record) {
            Ok(line) => self.sink.send(line),
            Err(e) => tracing::warn!("feedback record not serialized: {e}"),
        }
    }

    /// Waits (at most `timeout`) until everything sent so far is on disk.
    pub fn flush(&self, timeout: Duration) {
        self.sink.flush(timeout);
    }

    /// Records dropped so far because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.sink.dropped.load(Ordering::Relaxed)
    }
}

/// The source text to record for a suggestion at `origin` of `text` (redacted).
pub fn source_text(path: String, doc: &Document, origin: usize, suggestion: &str) -> SourceText {
    let start = origin.saturating_sub(PREFIX_BYTES);
    let prefix = doc.slice(start..origin);
    // Start the prefix on a line start when one is in it, so the sample begins with whole lines.
    let prefix = match prefix.find('\n') {
        Some(i) if start > 0 => &prefix[i + 1..],
        _ => prefix.as_str(),
    };
    SourceText {
        path,
        prefix: moat_index::redact(prefix).into_owned(),
        suffix: moat_index::redact(&doc.slice(origin..origin + SUFFIX_BYTES)).into_owned(),
        text: moat_index::redact(suggestion).into_owned(),
    }
}

enum Message {
    Line(String),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The background writer: started on the first record, one thread, a bounded channel.
struct Sink {
    dir: Option<PathBuf>,
    tx: Mutex<Option<SyncSender<Message>>>,
    dropped: Arc<AtomicU64>,
}

impl Sink {
    fn new(dir: Option<PathBuf>) -> Sink {
        Sink {
            dir,
            tx: Mutex::new(None),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    fn sender(&self) -> Option<SyncSender<Message>> {
        let dir = self.dir.clone()?;
        let mut tx = self.tx.lock().ok()?;
        if tx.is_none() {
            let (sender, receiver) = sync_channel(CHANNEL_CAPACITY);
            let dropped = self.dropped.clone();
            let spawned = std::thread::Builder::new()
                .name("moat-feedback".into())
                .spawn(move || write_loop(&dir, receiver, &dropped));
            if let Err(e) = spawned {
                tracing::warn!("feedback writer not started: {e}");
                return None;
            }
            *tx = Some(sender);
        }
        tx.clone()
    }

    fn send(&self, line: String) {
        let Some(tx) = self.sender() else {
            return;
        };
        match tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&self, timeout: Duration) {
        let Some(tx) = self.tx.lock().ok().and_then(|t| t.clone()) else {
            return;
        };
        let (ack, done) = std::sync::mpsc::channel();
        let deadline = Instant::now() + timeout;
        // The channel may be full: keep trying until the deadline.
        let mut message = Message::Flush(ack);
        loop {
            match tx.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// The file and its rotation.
struct LogFile {
    dir: PathBuf,
    file: Option<File>,
    size: u64,
    warned: bool,
}

impl LogFile {
    fn path(&self, n: usize) -> PathBuf {
        if n == 0 {
            self.dir.join(FILE_NAME)
        } else {
            self.dir.join(format!("feedback.{n}.jsonl"))
        }
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let mut dir = std::fs::DirBuilder::new();
            dir.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                dir.mode(0o700);
            }
            dir.create(&self.dir)?;
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let file = options.open(self.path(0))?;
            self.size = file.metadata().map_or(0, |m| m.len());
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("feedback file not open"))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        for n in (1..=KEEP_ROTATED).rev() {
            let from = self.path(n - 1);
            if from.exists() {
                std::fs::rename(&from, self.path(n))?;
            }
        }
        self.size = 0;
        Ok(())
    }

    fn write(&mut self, batch: &str) {
        let result = (|| {
            if self.size > 0 && self.size + batch.len() as u64 > MAX_FILE_BYTES {
                self.rotate()?;
            }
            let file = self.open()?;
            file.write_all(batch.as_bytes())?;
            file.flush()?;
            self.size += batch.len() as u64;
            Ok::<_, std::io::Error>(())
        })();
        if let Err(e) = result {
            self.file = None;
            if !self.warned {
                self.warned = true;
                tracing::warn!("feedback not written to {}: {e}", self.path(0).display());
            }
        }
    }
}

fn write_loop(dir: &Path, rx: Receiver<Message>, dropped: &AtomicU64) {
    let mut log = LogFile {
        dir: dir.to_path_buf(),
        file: None,
        size: 0,
        warned: false,
    };
    while let Ok(first) = rx.recv() {
        let mut batch = String::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    batch.push_str(&line);
                    batch.push('\n');
                }
                Message::Flush(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let record = DroppedRecord {
                v: FORMAT_VERSION,
                kind: "dropped".into(),
                ts_ms: now_ms(),
                count: lost,
            };
            if let Ok(line) = serde_json::to_string(&record) {
                batch.push_str(&line);
                batch.push('\n');
            }
        }
        if !batch.is_empty() {
            log.write(&batch);
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Reading the file back failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error(
        "no feedback at {0} (nothing recorded yet, or recorded elsewhere: see docs/feedback.md)"
    )]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Records read from a file or a folder, with what could not be read.
#[derive(Debug, Default)]
pub struct Records {
    pub records: Vec<Record>,
    /// Lines that are not records of a known kind (damaged, or a newer format version).
    pub skipped_lines: usize,
    /// The files read, oldest first.
    pub files: Vec<PathBuf>,
}

/// The files of a feedback folder, oldest first (`feedback.N.jsonl` … `feedback.jsonl`); a file
/// path is itself.
fn feedback_files(path: &Path) -> Result<Vec<PathBuf>, FeedbackError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(FeedbackError::NotFound(path.to_path_buf()));
    }
    let mut rotated: Vec<(usize, PathBuf)> = std::fs::read_dir(path)
        .map_err(|source| FeedbackError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix("feedback.")?
                .strip_suffix(".jsonl")?
                .parse::<usize>()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let current = path.join(FILE_NAME);
    if current.is_file() {
        files.push(current);
    }
    if files.is_empty() {
        return Err(FeedbackError::NotFound(path.join(FILE_NAME)));
    }
    Ok(files)
}

fn parse_line(line: &str) -> Option<Record> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("v")?.as_u64()? > u64::from(FORMAT_VERSION) {
        return None;
    }
    match value.get("kind")?.as_str()? {
        "suggestion" => serde_json::from_value(value)
            .ok()
            .map(|r| Record::Suggestion(Box::new(r))),
        "dropped" => serde_json::from_value(value).ok().map(Record::Dropped),
        _ => None,
    }
}

/// Reads every record from a feedback file, or from a folder (its rotated files too, oldest
/// first). Lines that cannot be read are counted, not fatal: a crash can cut the last line.
pub fn read_records(path: &Path) -> Result<Records, FeedbackError> {
    let mut out = Records {
        files: feedback_files(path)?,
        ..Records::default()
    };
    for file in &out.files {
        let f = File::open(file).map_err(|source| FeedbackError::Io {
            path: file.clone(),
            source,
        })?;
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|source| FeedbackError::Io {
                path: file.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            match parse_line(&line) {
                Some(r) => out.records.push(r),
                None => out.skipped_lines += 1,
            }
        }
    }
    Ok(out)
}

/// An accepted suggestion with the text around it: a fill-in-the-middle sample.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedSample {
    pub language: String,
    /// Relative to the workspace folder.
    pub path: String,
    pub prefix: String,
    /// What the user kept: the whole suggestion, or its kept words when `partial`.
    pub middle: String,
    pub suffix: String,
    pub partial: bool,
    pub model: Option<String>,
}

/// What [`read_accepted`] found.
#[derive(Debug, Default)]
pub struct AcceptedFeedback {
    pub samples: Vec<AcceptedSample>,
    /// Accepted (or partly accepted) suggestions recorded without source text
    /// (`feedbackSourceText` was off): counted, never usable as samples.
    pub without_text: usize,
    /// Suggestion records read in all.
    pub suggestions: usize,
    pub skipped_lines: usize,
}

/// The accepted suggestions in the feedback at `path` (a file or a folder, e.g.
/// [`feedback_dir`]) as training samples for `moat dataset build --feedback`. Partly accepted
/// ones are included (their kept words as the middle) when `include_partial`. Only records made
/// with `feedbackSourceText` on carry text; the others are counted in `without_text`.
pub fn read_accepted(
    path: &Path,
    include_partial: bool,
) -> Result<AcceptedFeedback, FeedbackError> {
    let records = read_records(path)?;
    let mut out = AcceptedFeedback {
        skipped_lines: records.skipped_lines,
        ..AcceptedFeedback::default()
    };
    for record in records.records {
        let Record::Suggestion(r) = record else {
            continue;
        };
        out.suggestions += 1;
        let partial = match r.outcome {
            Outcome::Accepted => false,
            Outcome::Partial if include_partial => true,
            _ => continue,
        };
        let Some(source) = r.source else {
            out.without_text += 1;
            continue;
        };
        let middle: String = if partial {
            source
                .text
                .chars()
                .take(r.accepted_chars as usize)
                .collect()
        } else {
            source.text
        };
        if middle.trim().is_empty() {
            continue;
        }
        out.samples.push(AcceptedSample {
            language: r.language,
            path: source.path,
            prefix: source.prefix,
            middle,
            suffix: source.suffix,
            partial,
            model: r.model,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::new(text, 1, "python")
    }

    fn shown(text: &str, origin: usize) -> Shown {
        Shown {
            method: Method::Inline,
            language: "python".into(),
            model: Some("tiny".into()),
            latency: Duration::from_millis(42),
            prompt_tokens: Some(100),
            snippets: Some(2),
            origin,
            text: text.into(),
            source: None,
        }
    }

    #[test]
    fn outcomes_from_the_text_at_the_suggestion() {
        let s = "return x + 1";
        assert_eq!(judge(s, s.len()), (Outcome::Accepted, 12));
        assert_eq!(judge(s, 0), (Outcome::Dismissed, 0));
        // Part of a word is typing over it, not taking it.
        assert_eq!(judge(s, 3), (Outcome::Dismissed, 0));
        assert_eq!(judge(s, 6), (Outcome::Partial, 6));
        assert_eq!(judge(s, 8), (Outcome::Partial, 8));
        assert_eq!(judge(s, 10), (Outcome::Partial, 10));
        // Leading whitespace alone is not a kept word.
        assert_eq!(judge("  foo", 2), (Outcome::Dismissed, 0));
        // Characters, not bytes.
        assert_eq!(judge("é = 1", "é = ".len()), (Outcome::Partial, 4));
        assert_eq!(kept_bytes(&doc("ab中."), 2, "中y"), "中".len());
        assert_eq!(kept_bytes(&doc("ab"), 5, "x"), 0);
        // The document goes on with another word: that word was typed over, not kept.
        assert_eq!(kept_bytes(&doc("x = leasex"), 4, "lease()"), 0);
        assert_eq!(kept_bytes(&doc("x = a.bz"), 4, "a.bc()"), 2);
        assert_eq!(kept_bytes(&doc("x = lease.x"), 4, "lease()"), 5);
        assert_eq!(kept_bytes(&doc("x = lease()y"), 4, "lease()"), 7);
        assert_eq!(kept_bytes(&doc("ab中x"), 3, "x"), 0, "not a char boundary");
    }

    fn read_all(dir: &Path) -> Vec<SuggestionRecord> {
        read_records(dir)
            .unwrap()
            .records
            .into_iter()
            .filter_map(|r| match r {
                Record::Suggestion(s) => Some(*s),
                Record::Dropped(_) => None,
            })
            .collect()
    }

    #[test]
    fn typing_through_keeps_one_suggestion_and_the_next_request_decides_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::new(Some(dir.path().to_path_buf()));
        let id = t.answered("a", None, 4, Some(shown("foo(1)", 4))).unwrap();
        // Typed "fo" (mid-word, before other text): still typing through it.
        let snap = t.snapshot("a", &doc("x = fox"));
        assert_eq!(t.answered("a", snap, 6, Some(shown("o(1)", 6))), Some(id));
        // Typed "foo": the answer is the rest: the same suggestion.
        let snap = t.snapshot("a", &doc("x = foo"));
        assert_eq!(
            t.answered("a", snap, 7, Some(shown("(1)", 7))),
            Some(id),
            "typing through"
        );
        // Then typed something else: decided as partly accepted ("foo" kept), a new one shown.
        let snap = t.snapshot("a", &doc("x = foo.bar"));
        let next = t.answered("a", snap, 11, Some(shown("()", 11))).unwrap();
        assert_ne!(next, id);
        // Accepted by command; unknown ids are ignored.
        assert!(t.accepted(next));
        assert!(!t.accepted(next));
        // A third, dismissed by the next request that got no answer.
        t.answered("a", None, 4, Some(shown("bar", 4)));
        let snap = t.snapshot("a", &doc("x = "));
        assert_eq!(t.answered("a", snap, 4, None), None);
        t.flush(Duration::from_secs(5));
        let records = read_all(dir.path());
        let got: Vec<_> = records
            .iter()
            .map(|r| (r.outcome, r.signal, r.accepted_chars))
            .collect();
        assert_eq!(
            got,
            vec![
                (Outcome::Partial, Signal::NextRequest, 3),
                (Outcome::Accepted, Signal::Command, 2),
                (Outcome::Dismissed, Signal::NextRequest, 0),
            ]
        );
        assert_eq!(records[0].latency_ms, 42);
        assert_eq!(records[0].shown_chars, 6);
        assert!(records.iter().all(|r| r.source.is_none()));
    }

    #[test]
    fn closing_decides_on_the_text_and_rotation_bounds_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::new(Some(dir.path().to_path_buf()));
        t.answered("a", None, 0, Some(shown("abc", 0)));
        t.finish_document("a", Some(&doc("abc\n")), Signal::Close);
        t.flush(Duration::from_secs(5));
        let records = read_all(dir.path());
        assert_eq!(records[0].outcome, Outcome::Accepted);
        assert_eq!(records[0].signal, Signal::Close);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode(&dir.path().join(FILE_NAME)),
                0o600,
                "only the user reads it"
            );
        }

        // Rotation: a full file moves to feedback.1.jsonl.
        let mut log = LogFile {
            dir: dir.path().to_path_buf(),
            file: None,
            size: 0,
            warned: false,
        };
        let line = format!("{}\n", "x".repeat(1024));
        for _ in 0..(MAX_FILE_BYTES as usize / 1024) * (KEEP_ROTATED + 2) {
            log.write(&line);
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["feedback.1.jsonl", "feedback.2.jsonl", "feedback.jsonl"]
        );
        for name in names {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= MAX_FILE_BYTES, "{len}");
        }
    }

    #[test]
    fn a_flood_is_dropped_and_counted_never_lost_silently() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::new(Some(dir.path().to_path_buf()));
        let sent = CHANNEL_CAPACITY * 20;
        for i in 0..sent {
            t.answered("a", None, 0, Some(shown("abc", 0)));
            t.finish_document("a", None, Signal::Close);
            if i == 0 {
                // The writer thread has started; the rest arrive faster than it writes.
                std::thread::yield_now();
            }
        }
        t.flush(Duration::from_secs(10));
        let read = read_records(dir.path()).unwrap();
        let (mut written, mut dropped) = (0, 0);
        for r in &read.records {
            match r {
                Record::Suggestion(_) => written += 1,
                Record::Dropped(d) => dropped += d.count,
            }
        }
        assert_eq!(
            written + dropped,
            sent as u64,
            "every record written or counted"
        );
        assert_eq!(read.skipped_lines, 0);
    }

    #[test]
    fn nothing_is_written_without_a_folder() {
        let t = Tracker::new(None);
        assert!(!t.available());
        let id = t.answered("a", None, 0, Some(shown("abc", 0)));
        assert!(id.is_some(), "tracked, so type-through still works");
        t.finish_document("a", Some(&doc("abc")), Signal::Close);
        t.flush(Duration::from_millis(100));
    }

    #[test]
    fn accepted_samples_need_source_text() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::new(Some(dir.path().to_path_buf()));
        let text = "def f(x):\n    return ";
        let origin = text.len();
        let mut with_text = shown("x + 1", origin);
        with_text.source = Some(source_text("a.py".into(), &doc(text), origin, "x + 1"));
        t.answered("a", None, origin, Some(with_text));
        let now = doc(&format!("{text}x + 1\n"));
        t.finish_document("a", Some(&now), Signal::Close);
        t.answered("b", None, origin, Some(shown("y", origin)));
        t.finish_document("b", Some(&doc(&format!("{text}y"))), Signal::Close);
        let mut partial = shown("a.b(c)", origin);
        partial.source = Some(source_text("a.py".into(), &doc(text), origin, "a.b(c)"));
        t.answered("c", None, origin, Some(partial));
        t.finish_document("c", Some(&doc(&format!("{text}a.z"))), Signal::Close);
        t.flush(Duration::from_secs(5));
        // A damaged last line (a crash mid-write) and a future version are skipped.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        writeln!(f, "{{\"v\":99,\"kind\":\"suggestion\"}}").unwrap();
        write!(f, "{{\"v\":1,\"ki").unwrap();

        let got = read_accepted(dir.path(), false).unwrap();
        assert_eq!((got.suggestions, got.without_text), (3, 1));
        assert_eq!(got.skipped_lines, 2);
        assert_eq!(got.samples.len(), 1);
        let s = &got.samples[0];
        assert_eq!(
            (s.prefix.as_str(), s.middle.as_str(), s.suffix.as_str()),
            (text, "x + 1", "")
        );
        assert_eq!(s.path, "a.py");
        let got = read_accepted(dir.path(), true).unwrap();
        assert_eq!(got.samples.len(), 2);
        assert_eq!(got.samples[1].middle, "a.");
        assert!(got.samples[1].partial);
        assert!(matches!(
            read_accepted(&dir.path().join("none"), false),
            Err(FeedbackError::NotFound(_))
        ));
    }

    #[test]
    fn recorded_source_text_is_redacted_and_bounded() {
        let secret = "AKIAIOSFODNN7EXAMPLE";
        let text = format!("{}\nkey = \"{secret}\"\nx = ", "a = 1\n".repeat(2000));
        let s = source_text("k.py".into(), &doc(&text), text.len(), "1");
        assert!(!s.prefix.contains(secret), "{}", s.prefix);
        assert!(s.prefix.len() <= PREFIX_BYTES);
        assert!(s.prefix.starts_with("a = 1\n"));
        assert!(s.prefix.ends_with("x = "));
    }
}
