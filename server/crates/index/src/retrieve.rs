//! Retrieval: which indexed snippets a completion at the cursor should see, and
//! `workspace/symbol` lookups.
//!
//! Owns: the sources and their order of importance — (1) definitions (doc + signature) of the
//! identifiers near the cursor, of the partial identifier being typed, and of imported names;
//! (2) chunks similar to the lines before the cursor (BM25 over identifier tokens; open files
//! boosted most, and searched from their editor text when it is newer than the index; recently
//! edited files boosted less); (3) the
//! file's own imports when they are far above the cursor — the byte budget split between them,
//! deduplication, deterministic order (least useful first, so the most useful ends nearest the
//! cursor) and the final redaction of every returned text.
//! Must not: read files, take a lock for longer than a manifest lookup, or return text that has
//! not been through [`redact`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::RwLock;
use std::time::Instant;

use moat_syntax::Language;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query as TantivyQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use crate::extract::{self, identifiers, is_stopword, push_tokens};
use crate::index::Symbol;
use crate::redact::redact;
use crate::store::{Fields, Manifest};
use crate::{Error, Result};

/// What to retrieve context for.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    /// The current file (absolute or workspace-relative). Its own indexed chunks and
    /// definitions are never returned: the prompt already holds the file around the cursor.
    pub path: &'a str,
    /// The document text before the cursor.
    pub text_before_cursor: &'a str,
    /// Identifiers the caller found near the cursor, most important first (for example from
    /// the syntax tree). Identifiers of the last lines before the cursor are added after them.
    pub identifiers_near_cursor: &'a [String],
    /// Open documents as `(path, text)`: their chunks are boosted, and searched from this text
    /// when it differs from what was indexed.
    pub open_files: &'a [(String, String)],
    /// Total bytes of snippet text (plus a small per-snippet allowance for the path label).
    pub budget_bytes: usize,
    /// When set and passed after the definitions were gathered, similar-code search is skipped.
    pub deadline: Option<Instant>,
}

/// Where a snippet comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SnippetKind {
    /// Doc and signature of definitions used near the cursor (one snippet per file).
    Definition,
    /// A chunk similar to the code before the cursor.
    Similar,
    /// The current file's import lines.
    Import,
}

/// A piece of workspace context for the prompt. The list returned by [`crate::Index::retrieve`]
/// is least useful first.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievedSnippet {
    /// Workspace-relative, `/`-separated.
    pub path: String,
    /// Redacted.
    pub text: String,
    /// Higher is more useful; comparable only between snippets of the same kind (BM25 for
    /// `Similar`, rank-based in (0, 1] for `Definition`, 1 for `Import`).
    pub score: f32,
    pub kind: SnippetKind,
}

/// How many lines before the cursor make the similarity query and the implicit identifiers.
pub const TAIL_LINES: usize = 10;
/// Identifiers looked up as definitions, at most.
const MAX_IDENTIFIERS: usize = 24;
/// Definitions kept per identifier.
const DEFS_PER_NAME: usize = 2;
/// An identifier defined in more places than this is skipped unless one of them is in an open
/// file or an imported module (`new`, `run`, `__init__`…).
const AMBIGUOUS_DEFS: usize = 4;
/// Candidates fetched from the BM25 search.
const SIMILAR_CANDIDATES: usize = 32;
/// Most lines of a type's body shown with its definition.
const OUTLINE_LINES: usize = 12;
/// Most bytes of a type outline.
const OUTLINE_BYTES: usize = 600;
/// Chunks of a file searched for a type's outline.
const OUTLINE_CHUNKS: usize = 512;
/// Similar chunks returned at most.
const MAX_SIMILAR: usize = 8;
/// Score multiplier for chunks of open files.
const OPEN_FILE_BOOST: f32 = 1.5;
/// Score multiplier for chunks of recently edited files (not open): the most recent gets it
/// all, the `RECENT_FILES`-th almost nothing, so open > recent > the rest of the index.
const RECENT_FILE_BOOST: f32 = 1.25;
/// Similar chunks scoring below this fraction of the best one are dropped.
const MIN_RELATIVE_SCORE: f32 = 0.25;
/// Share of the budget definitions may take before similar chunks are considered.
const DEFINITION_SHARE: f32 = 0.5;
/// Imports are returned when the last one is at least this far above the cursor (closer ones
/// are already in the prompt's prefix).
pub const IMPORTS_FAR_BYTES: usize = 2048;
/// Share of the budget the imports snippet may take.
const IMPORT_SHARE: f32 = 0.125;
/// Allowance per snippet for the path label the prompt adds.
pub const SNIPPET_OVERHEAD_BYTES: usize = 16;
/// Open documents larger than this are not chunked at query time.
const MAX_OPEN_FILE_BYTES: usize = 512 * 1024;
/// At most this many stale open documents are chunked at query time.
const MAX_STALE_OPEN_FILES: usize = 8;
/// The partial identifier at the cursor is completed against definition names from this
/// length on.
const MIN_PARTIAL_LEN: usize = 3;
/// BM25 parameters (tantivy's).
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// What retrieval needs from the index, borrowed for one query.
pub(crate) struct Retriever<'a> {
    pub searcher: &'a Searcher,
    pub fields: &'a Fields,
    pub manifest: &'a RwLock<Manifest>,
    /// The query's path, workspace-relative.
    pub current: String,
    /// Open documents, workspace-relative.
    pub open: Vec<(String, &'a str)>,
    /// Recently edited files, workspace-relative, most recent first.
    pub recent: Vec<String>,
}

/// A definition found for an identifier.
#[derive(Debug, Clone)]
struct DefHit {
    path: String,
    line: u64,
    text: String,
    /// The definition's kind (`function`, `class`, `interface`…).
    kind: String,
    /// Its signature as stored (the end of `text` unless a docstring follows it).
    signature: String,
    /// Position in priority order (0 = most useful).
    rank: usize,
}

/// A similar chunk.
#[derive(Debug, Clone)]
struct ChunkHit {
    path: String,
    line: u64,
    end_line: u64,
    text: String,
    score: f32,
}

fn str_field(doc: &TantivyDocument, field: tantivy::schema::Field) -> &str {
    doc.get_first(field).and_then(|v| v.as_str()).unwrap_or("")
}

fn u64_field(doc: &TantivyDocument, field: tantivy::schema::Field) -> u64 {
    doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0)
}

fn cost(path: &str, text: &str) -> usize {
    text.len() + path.len() + SNIPPET_OVERHEAD_BYTES
}

/// The last `n` lines of `text` (the partial line at the cursor included).
fn tail_lines(text: &str, n: usize) -> &str {
    let mut start = text.len();
    for _ in 0..n {
        match text[..start].rfind('\n') {
            Some(i) => start = i,
            None => return text,
        }
    }
    &text[start..]
}

/// The identifier the cursor is in the middle of typing, if any.
fn partial_identifier(text_before_cursor: &str) -> Option<&str> {
    let (start, ident) = identifiers(tail_lines(text_before_cursor, 1)).last()?;
    let tail = tail_lines(text_before_cursor, 1);
    (start + ident.len() == tail.len()).then_some(ident)
}

/// Identifier order: the caller's, then the tail's nearest to the cursor first, then imported
/// names; unique, no keywords or one-letter names.
fn query_identifiers(query: &Query<'_>, imports: &[String], partial: Option<&str>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |ident: &str| {
        if ident.len() >= 2
            && !is_stopword(&ident.to_lowercase())
            && Some(ident) != partial
            && seen.insert(ident.to_owned())
        {
            out.push(ident.to_owned());
        }
    };
    for ident in query.identifiers_near_cursor {
        push(ident);
    }
    let tail = tail_lines(query.text_before_cursor, TAIL_LINES);
    let tail_idents: Vec<&str> = identifiers(tail).map(|(_, i)| i).collect();
    for ident in tail_idents.iter().rev() {
        push(ident);
    }
    for line in imports {
        for (_, ident) in identifiers(line) {
            push(ident);
        }
    }
    out.truncate(MAX_IDENTIFIERS);
    out
}

/// Lowercased words of the import lines (module and file names), for preferring definitions
/// from imported modules.
fn import_words(imports: &[String]) -> HashSet<String> {
    imports
        .iter()
        .flat_map(|line| identifiers(line).map(|(_, i)| i.to_lowercase()))
        .collect()
}

/// Whether a path's file stem or a directory names an imported module.
fn path_is_imported(path: &str, words: &HashSet<String>) -> bool {
    let p = Path::new(path);
    let stem_hit = p
        .file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| words.contains(&s.to_lowercase()));
    stem_hit
        || p.parent().is_some_and(|dir| {
            dir.components()
                .filter_map(|c| c.as_os_str().to_str())
                .any(|c| words.contains(&c.to_lowercase()))
        })
}

/// Share of a chunk's lines found in the current file above which the chunk only repeats what
/// the prompt already holds (copied code, generated twins).
const REPEAT_SHARE: f32 = 0.5;
/// Bytes of the current file (before the cursor, nearest first) compared against chunks.
const REPEAT_SCAN_BYTES: usize = 64 * 1024;

/// The trimmed, non-trivial lines of the end of `text`.
fn line_set(text: &str) -> HashSet<&str> {
    let from = text.floor_char_boundary(text.len().saturating_sub(REPEAT_SCAN_BYTES));
    text[from..]
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 3)
        .collect()
}

/// Whether most of `text`'s non-trivial lines are already in `own`.
fn repeats(text: &str, own: &HashSet<&str>) -> bool {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() > 3)
        .collect();
    let found = lines.iter().filter(|l| own.contains(*l)).count();
    !lines.is_empty() && found as f32 > lines.len() as f32 * REPEAT_SHARE
}

/// Whether a retrieval stage is turned off by `MOAT_ABLATE` (comma-separated stage names): how
/// the ablation table in `tests/eval/README.md` is measured with one binary. Read once.
fn ablated(stage: &str) -> bool {
    static ABLATE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ABLATE
        .get_or_init(|| {
            std::env::var("MOAT_ABLATE")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|s| s == stage)
}

/// Definition kinds whose body lists members (fields, methods, variants).
fn is_type_kind(kind: &str) -> bool {
    matches!(kind, "class" | "interface" | "type" | "struct" | "enum")
}

/// How many directory levels apart two paths are.
fn dir_distance(a: &str, b: &str) -> usize {
    let da: Vec<&str> = a.split('/').collect();
    let db: Vec<&str> = b.split('/').collect();
    let (da, db) = (&da[..da.len() - 1], &db[..db.len() - 1]);
    let common = da.iter().zip(db).take_while(|(x, y)| x == y).count();
    da.len() + db.len() - 2 * common
}

impl Retriever<'_> {
    fn is_open(&self, path: &str) -> bool {
        self.open.iter().any(|(p, _)| p == path)
    }

    /// How much a chunk of `path` is preferred: open documents first, then recently edited
    /// files (more recent, more), then everything else.
    fn boost(&self, path: &str) -> f32 {
        if self.is_open(path) {
            return OPEN_FILE_BOOST;
        }
        match self.recent.iter().position(|p| p == path) {
            Some(rank) => {
                let n = self.recent.len().max(1) as f32;
                1.0 + (RECENT_FILE_BOOST - 1.0) * (1.0 - rank as f32 / n)
            }
            None => 1.0,
        }
    }

    fn search(
        &self,
        query: &dyn TantivyQuery,
        limit: usize,
    ) -> Result<Vec<(f32, TantivyDocument)>> {
        let hits: Vec<(f32, DocAddress)> = self
            .searcher
            .search(query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(|e| Error::store("searching", e))?;
        hits.into_iter()
            .map(|(score, addr)| {
                self.searcher
                    .doc::<TantivyDocument>(addr)
                    .map(|doc| (score, doc))
                    .map_err(|e| Error::store("reading a document", e))
            })
            .collect()
    }

    /// Definitions of `name` outside the current file, best first, or nothing when the name is
    /// too ambiguous to be useful.
    fn definitions_of(&self, name: &str, imported: &HashSet<String>) -> Result<Vec<DefHit>> {
        let term = Term::from_field_text(self.fields.name, name);
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        let mut found: Vec<(bool, bool, usize, DefHit)> = self
            .search(&query, 16)?
            .into_iter()
            .map(|(_, doc)| {
                let hit = DefHit {
                    path: str_field(&doc, self.fields.path).to_owned(),
                    line: u64_field(&doc, self.fields.line),
                    text: str_field(&doc, self.fields.text).to_owned(),
                    kind: str_field(&doc, self.fields.def_kind).to_owned(),
                    signature: str_field(&doc, self.fields.signature).to_owned(),
                    rank: 0,
                };
                let open = self.is_open(&hit.path);
                let imported = path_is_imported(&hit.path, imported);
                let distance = dir_distance(&self.current, &hit.path);
                (!open, !imported, distance, hit)
            })
            .collect();
        // A name the current file defines resolves there (the prompt holds it, or its file
        // context does): another file's definition of the same name would mislead.
        if found.iter().any(|(_, _, _, hit)| hit.path == self.current) && !ablated("local") {
            return Ok(Vec::new());
        }
        found.retain(|(_, _, _, hit)| hit.path != self.current);
        found.sort_by(|a, b| {
            (a.0, a.1, a.2, &a.3.path, a.3.line).cmp(&(b.0, b.1, b.2, &b.3.path, b.3.line))
        });
        let preferred = found.first().is_some_and(|f| !f.0 || !f.1);
        if found.len() > AMBIGUOUS_DEFS && !preferred {
            return Ok(Vec::new());
        }
        Ok(found
            .into_iter()
            .take(DEFS_PER_NAME)
            .map(|(_, _, _, hit)| hit)
            .collect())
    }

    /// A type's definition with the start of its body (fields, members), read from the chunk
    /// that holds its first line: what `x.` on a value of the type needs. `None` when the
    /// definition is not a type or its chunk is not found.
    fn type_outline(&self, hit: &DefHit) -> Option<String> {
        if !is_type_kind(&hit.kind) {
            return None;
        }
        let clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.path, &hit.path),
                    IndexRecordOption::Basic,
                )),
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.kind, crate::store::KIND_CHUNK),
                    IndexRecordOption::Basic,
                )),
            ),
        ];
        let chunks = self
            .search(&BooleanQuery::new(clauses), OUTLINE_CHUNKS)
            .ok()?;
        let (start, text) = chunks.iter().find_map(|(_, doc)| {
            let start = u64_field(doc, self.fields.line);
            let end = u64_field(doc, self.fields.end_line);
            (start <= hit.line && hit.line < end).then(|| (start, str_field(doc, self.fields.text)))
        })?;
        // The doc comment above the signature, as the definition snippet has it.
        let doc = hit
            .text
            .strip_suffix(hit.signature.as_str())
            .unwrap_or_default();
        let mut out = doc.to_owned();
        let mut lines = 0;
        for line in text.lines().skip((hit.line - start) as usize) {
            if lines >= OUTLINE_LINES || out.len() + line.len() + 1 > OUTLINE_BYTES {
                break;
            }
            out.push_str(line);
            out.push('\n');
            lines += 1;
        }
        let out = out.trim_end().to_owned();
        (lines > 1).then_some(out)
    }

    /// Definition names starting with `prefix`, shortest first.
    fn names_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>> {
        let mut names = BTreeMap::new();
        for segment in self.searcher.segment_readers() {
            let inverted = segment
                .inverted_index(self.fields.name)
                .map_err(|e| Error::store("reading names", e))?;
            let mut stream = inverted
                .terms()
                .range()
                .ge(prefix.as_bytes())
                .into_stream()
                .map_err(|e| Error::store("reading names", e))?;
            let mut seen = 0;
            while stream.advance() && seen < 256 {
                let Ok(name) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                if !name.starts_with(prefix) {
                    break;
                }
                seen += 1;
                if name != prefix {
                    names.insert((name.len(), name.to_owned()), ());
                }
            }
        }
        Ok(names.into_keys().take(limit).map(|(_, n)| n).collect())
    }

    /// Ranked definitions for the query.
    fn definitions(&self, query: &Query<'_>, imports: &[String]) -> Vec<DefHit> {
        let partial = partial_identifier(query.text_before_cursor)
            .filter(|p| p.chars().count() >= MIN_PARTIAL_LEN);
        let mut names = query_identifiers(query, imports, partial);
        if let Some(partial) = partial {
            // What is being typed comes first: its exact definition, then completions of it.
            let mut first = vec![partial.to_owned()];
            match self.names_with_prefix(partial, 3) {
                Ok(completions) => first.extend(completions),
                Err(err) => tracing::debug!(%err, "prefix lookup failed"),
            }
            first.retain(|n| !names.contains(n));
            names.splice(0..0, first);
            names.truncate(MAX_IDENTIFIERS);
        }
        let words = import_words(imports);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for name in &names {
            match self.definitions_of(name, &words) {
                Ok(hits) => {
                    for mut hit in hits {
                        if seen.insert((hit.path.clone(), hit.line)) {
                            hit.rank = out.len();
                            if !ablated("outline")
                                && let Some(outline) = self.type_outline(&hit)
                            {
                                hit.text = outline;
                            }
                            out.push(hit);
                        }
                    }
                }
                Err(err) => tracing::debug!(%err, name, "definition lookup failed"),
            }
        }
        out
    }

    /// Chunks similar to the lines before the cursor, best first.
    fn similar(&self, query: &Query<'_>) -> Result<Vec<ChunkHit>> {
        let mut tokens = Vec::new();
        push_tokens(
            tail_lines(query.text_before_cursor, TAIL_LINES),
            &mut tokens,
        );
        let mut seen = HashSet::new();
        tokens.retain(|t| seen.insert(t.clone()));
        tokens.truncate(48);
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        // Open documents whose text differs from the index are searched from their text.
        let stale: Vec<(&str, &str)> = {
            let manifest = self.manifest.read().unwrap_or_else(|e| e.into_inner());
            self.open
                .iter()
                .filter(|(path, text)| {
                    *path != self.current
                        && text.len() <= MAX_OPEN_FILE_BYTES
                        && manifest.files.get(path).is_none_or(|e| {
                            e.skipped.is_none() && e.hash != crate::hash::fnv1a(str::as_bytes(text))
                        })
                })
                .take(MAX_STALE_OPEN_FILES)
                .map(|(p, t)| (p.as_str(), *t))
                .collect()
        };
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = tokens
            .iter()
            .map(|t| {
                let term = Term::from_field_text(self.fields.tokens, t);
                (
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
                        as Box<dyn TantivyQuery>,
                )
            })
            .collect();
        for path in std::iter::once(self.current.as_str()).chain(stale.iter().map(|(p, _)| *p)) {
            let term = Term::from_field_text(self.fields.path, path);
            clauses.push((
                Occur::MustNot,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        let mut hits: Vec<ChunkHit> = self
            .search(&BooleanQuery::new(clauses), SIMILAR_CANDIDATES)?
            .into_iter()
            .map(|(score, doc)| {
                let path = str_field(&doc, self.fields.path).to_owned();
                let boost = self.boost(&path);
                ChunkHit {
                    line: u64_field(&doc, self.fields.line),
                    end_line: u64_field(&doc, self.fields.end_line),
                    text: str_field(&doc, self.fields.text).to_owned(),
                    score: score * boost,
                    path,
                }
            })
            .collect();
        if !stale.is_empty() {
            let scorer = Bm25::new(self.searcher, self.fields.tokens, &tokens);
            for (path, text) in stale {
                let redacted = redact(text);
                for chunk in extract::extract_chunks(path, &redacted) {
                    let score = scorer.score(&chunk.tokens);
                    if score > 0.0 {
                        hits.push(ChunkHit {
                            path: path.to_owned(),
                            line: u64::from(chunk.start_line),
                            end_line: u64::from(chunk.end_line),
                            text: chunk.text,
                            score: score * OPEN_FILE_BOOST,
                        });
                    }
                }
            }
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.path.cmp(&b.path))
                .then(a.line.cmp(&b.line))
        });
        let best = hits.first().map_or(0.0, |h| h.score);
        let mut texts = HashSet::new();
        let mut kept: Vec<ChunkHit> = Vec::new();
        for hit in hits {
            if hit.score < best * MIN_RELATIVE_SCORE || kept.len() >= MAX_SIMILAR {
                break;
            }
            let overlaps = kept
                .iter()
                .any(|k| k.path == hit.path && k.line < hit.end_line && hit.line < k.end_line);
            if !overlaps && texts.insert(crate::hash::fnv1a(hit.text.trim().as_bytes())) {
                kept.push(hit);
            }
        }
        Ok(kept)
    }
}

/// BM25 over a chunk that is not in the index, with the index's statistics (as tantivy scores).
struct Bm25 {
    /// (token, idf) per query token.
    idf: Vec<(String, f32)>,
    average_len: f32,
}

impl Bm25 {
    fn new(searcher: &Searcher, field: tantivy::schema::Field, tokens: &[String]) -> Bm25 {
        use tantivy::query::Bm25StatisticsProvider;
        let docs = searcher.total_num_docs().unwrap_or(0).max(1) as f32;
        let total_tokens = searcher.total_num_tokens(field).unwrap_or(0) as f32;
        let idf = tokens
            .iter()
            .map(|t| {
                let df = searcher
                    .doc_freq(&Term::from_field_text(field, t))
                    .unwrap_or(0) as f32;
                let idf = (1.0 + (docs - df + 0.5) / (df + 0.5)).ln();
                (t.clone(), idf)
            })
            .collect();
        Bm25 {
            idf,
            average_len: (total_tokens / docs).max(1.0),
        }
    }

    fn score(&self, tokens: &[String]) -> f32 {
        let mut counts: HashMap<&str, f32> = HashMap::new();
        for t in tokens {
            *counts.entry(t.as_str()).or_default() += 1.0;
        }
        let len = tokens.len() as f32;
        self.idf
            .iter()
            .map(|(t, idf)| {
                let tf = counts.get(t.as_str()).copied().unwrap_or(0.0);
                if tf == 0.0 {
                    return 0.0;
                }
                let norm = K1 * (1.0 - B + B * len / self.average_len);
                idf * (1.0 + K1) * tf / (tf + norm)
            })
            .sum()
    }
}

/// Runs the query: gathers, budgets, orders (least useful first) and redacts.
pub(crate) fn retrieve(r: &Retriever<'_>, query: &Query<'_>) -> Vec<RetrievedSnippet> {
    if query.budget_bytes == 0 {
        return Vec::new();
    }
    let language = Language::from_path(Path::new(&r.current));
    let imports = extract::import_lines(language, query.text_before_cursor);
    let defs = if ablated("definitions") {
        Vec::new()
    } else {
        r.definitions(query, &imports)
    };
    let similar = if query.deadline.is_some_and(|d| Instant::now() >= d) || ablated("similar") {
        Vec::new()
    } else {
        r.similar(query).unwrap_or_else(|err| {
            tracing::debug!(%err, "similar-code search failed");
            Vec::new()
        })
    };

    let budget = query.budget_bytes;
    let mut used = 0;

    // The file's own imports, when the prefix window probably no longer holds them.
    let mut import_snippet = None;
    if !imports.is_empty() && !ablated("imports") {
        let last_import = imports.last().map(String::as_str).unwrap_or("");
        let far = query
            .text_before_cursor
            .rfind(last_import)
            .is_some_and(|at| query.text_before_cursor.len() - at >= IMPORTS_FAR_BYTES);
        let text = imports.join("\n");
        let c = cost(&r.current, &text);
        if far && c as f32 <= budget as f32 * IMPORT_SHARE {
            used += c;
            import_snippet = Some(RetrievedSnippet {
                path: r.current.clone(),
                text,
                score: 1.0,
                kind: SnippetKind::Import,
            });
        }
    }

    // Definitions, grouped per file; up to their share of the budget first.
    let def_budget = (budget as f32 * DEFINITION_SHARE) as usize;
    let mut chosen_defs: Vec<&DefHit> = Vec::new();
    let mut deferred: Vec<&DefHit> = Vec::new();
    let mut def_used = 0;
    for hit in &defs {
        let c = hit.text.len()
            + 1
            + if chosen_defs.iter().any(|d| d.path == hit.path) {
                0
            } else {
                hit.path.len() + SNIPPET_OVERHEAD_BYTES
            };
        if used + def_used + c <= budget && def_used + c <= def_budget {
            def_used += c;
            chosen_defs.push(hit);
        } else {
            deferred.push(hit);
        }
    }
    used += def_used;
    let mut chosen_similar: Vec<&ChunkHit> = Vec::new();
    let own_lines = (!ablated("dedupe")).then(|| line_set(query.text_before_cursor));
    for hit in &similar {
        if own_lines
            .as_ref()
            .is_some_and(|own| repeats(&hit.text, own))
        {
            continue;
        }
        let c = cost(&hit.path, &hit.text);
        if used + c <= budget {
            used += c;
            chosen_similar.push(hit);
        }
    }
    // Definitions that did not fit their share may use what similar code left.
    for hit in deferred {
        let c = hit.text.len() + hit.path.len() + 1 + SNIPPET_OVERHEAD_BYTES;
        if used + c <= budget {
            used += c;
            chosen_defs.push(hit);
        }
    }

    // Group definitions per file: the group's rank is its best definition's.
    let mut groups: Vec<(usize, String, Vec<&DefHit>)> = Vec::new();
    for hit in chosen_defs {
        match groups.iter_mut().find(|g| g.1 == hit.path) {
            Some(group) => {
                group.0 = group.0.min(hit.rank);
                group.2.push(hit);
            }
            None => groups.push((hit.rank, hit.path.clone(), vec![hit])),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));

    let mut out = Vec::new();
    // Least useful first: similar chunks from worst to best…
    for hit in chosen_similar.iter().rev() {
        out.push(RetrievedSnippet {
            path: hit.path.clone(),
            text: hit.text.clone(),
            score: hit.score,
            kind: SnippetKind::Similar,
        });
    }
    // …then definitions from the least to the most important file…
    for (rank, path, mut hits) in groups.into_iter().rev() {
        hits.sort_by_key(|h| h.line);
        let text = hits
            .iter()
            .map(|h| h.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        out.push(RetrievedSnippet {
            path,
            text,
            score: 1.0 / (1.0 + rank as f32),
            kind: SnippetKind::Definition,
        });
    }
    // …and the file's own imports last, right before its prefix.
    out.extend(import_snippet);
    for snippet in &mut out {
        if let std::borrow::Cow::Owned(clean) = redact(&snippet.text) {
            snippet.text = clean;
        }
    }
    out
}

/// How well a lowercased name matches a lowercased query: 0 exact, 1 prefix, 2 substring,
/// 3 subsequence.
fn match_class(query: &str, name: &str) -> Option<u8> {
    if query.is_empty() || name == query {
        return Some(0);
    }
    if name.starts_with(query) {
        return Some(1);
    }
    if name.contains(query) {
        return Some(2);
    }
    let mut chars = name.chars();
    query.chars().all(|q| chars.any(|c| c == q)).then_some(3)
}

/// `workspace/symbol`: definitions whose lowercased name matches.
pub(crate) fn symbols(
    searcher: &Searcher,
    fields: &Fields,
    query: &str,
    limit: usize,
) -> Result<Vec<Symbol>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let q = query.trim().to_lowercase();
    let mut names: HashMap<String, u8> = HashMap::new();
    for segment in searcher.segment_readers() {
        let inverted = segment
            .inverted_index(fields.name_lower)
            .map_err(|e| Error::store("reading names", e))?;
        let mut stream = inverted
            .terms()
            .stream()
            .map_err(|e| Error::store("reading names", e))?;
        while stream.advance() {
            let Ok(name) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            if let Some(class) = match_class(&q, name)
                && !names.contains_key(name)
            {
                names.insert(name.to_owned(), class);
            }
        }
    }
    let mut ranked: Vec<(u8, usize, String)> = names
        .into_iter()
        .map(|(name, class)| (class, name.len(), name))
        .collect();
    ranked.sort_unstable();
    let mut out = Vec::new();
    for (_, _, name) in ranked {
        if out.len() >= limit {
            break;
        }
        let query = TermQuery::new(
            Term::from_field_text(fields.name_lower, &name),
            IndexRecordOption::Basic,
        );
        let hits = searcher
            .search(&query, &TopDocs::with_limit(1000).order_by_score())
            .map_err(|e| Error::store("searching symbols", e))?;
        let mut found = Vec::with_capacity(hits.len());
        for (_, addr) in hits {
            let doc: TantivyDocument = searcher
                .doc(addr)
                .map_err(|e| Error::store("reading a symbol", e))?;
            let container = str_field(&doc, fields.container);
            found.push(Symbol {
                name: str_field(&doc, fields.name).to_owned(),
                kind: str_field(&doc, fields.def_kind).to_owned(),
                path: str_field(&doc, fields.path).to_owned(),
                line: u32::try_from(u64_field(&doc, fields.line)).unwrap_or(u32::MAX),
                signature: redact(str_field(&doc, fields.signature)).into_owned(),
                container: (!container.is_empty()).then(|| container.to_owned()),
            });
        }
        found.sort_by(|a, b| (&a.path, a.line, &a.name).cmp(&(&b.path, b.line, &b.name)));
        found.truncate(limit - out.len());
        out.extend(found);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_and_partials() {
        assert_eq!(tail_lines("a\nb\nc", 2), "\nb\nc");
        assert_eq!(tail_lines("a\nb", 5), "a\nb");
        assert_eq!(partial_identifier("x = add_num"), Some("add_num"));
        assert_eq!(partial_identifier("x = add_num("), None);
        assert_eq!(partial_identifier(""), None);
    }

    #[test]
    fn identifiers_nearest_first() {
        let caller = vec!["Config".to_owned()];
        let query = Query {
            text_before_cursor: "import os\nfrom util import helper\nx = alpha(beta)\ny = gamma",
            identifiers_near_cursor: &caller,
            ..Query::default()
        };
        let imports = vec!["from util import helper".to_owned()];
        let idents = query_identifiers(&query, &imports, Some("gamma"));
        assert_eq!(idents, ["Config", "beta", "alpha", "helper", "util", "os"]);
    }

    #[test]
    fn match_classes_and_paths() {
        assert_eq!(match_class("add", "add"), Some(0));
        assert_eq!(match_class("add", "add_numbers"), Some(1));
        assert_eq!(match_class("num", "add_numbers"), Some(2));
        assert_eq!(match_class("adn", "add_numbers"), Some(3));
        assert_eq!(match_class("zz", "add_numbers"), None);
        assert_eq!(dir_distance("a/b/x.py", "a/b/y.py"), 0);
        assert_eq!(dir_distance("a/b/x.py", "a/c/y.py"), 2);
        assert_eq!(dir_distance("x.py", "a/y.py"), 1);
        let words: HashSet<String> = ["utils".to_owned()].into();
        assert!(path_is_imported("pkg/utils.py", &words));
        assert!(path_is_imported("utils/math.py", &words));
        assert!(!path_is_imported("pkg/other.py", &words));
    }
}
