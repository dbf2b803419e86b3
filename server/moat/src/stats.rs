//! `moat stats`: acceptance of suggestions from the feedback the server records
//! (docs/feedback.md): overall, by language, by suggestion length and by latency.
//!
//! Reads only: never writes to the feedback folder.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use moat_lsp::feedback::{Outcome, Record, SuggestionRecord, feedback_dir, read_records};
use serde::Serialize;

use crate::print_out;

#[derive(Args)]
pub struct StatsArgs {
    /// A feedback file or folder (default: $MOAT_FEEDBACK_DIR, else <data dir>/feedback, where
    /// `moat serve` records).
    path: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Suggestion length buckets, in characters shown: (upper bound inclusive, label).
const LENGTH_BUCKETS: &[(u64, &str)] = &[
    (10, "1-10 chars"),
    (30, "11-30 chars"),
    (80, "31-80 chars"),
    (200, "81-200 chars"),
    (u64::MAX, "201+ chars"),
];

/// Latency buckets, request to answer: (upper bound exclusive, label).
const LATENCY_BUCKETS: &[(u64, &str)] = &[
    (100, "<100 ms"),
    (250, "100-249 ms"),
    (500, "250-499 ms"),
    (1000, "500-999 ms"),
    (u64::MAX, "1000+ ms"),
];

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Tally {
    /// The bucket's name (absent for the overall tally).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    pub shown: u64,
    pub accepted: u64,
    pub partial: u64,
    pub dismissed: u64,
    /// accepted / shown.
    pub acceptance_rate: f64,
    /// (accepted + partial) / shown.
    pub kept_rate: f64,
    /// Characters kept / characters shown.
    pub kept_chars_rate: f64,
    #[serde(skip)]
    shown_chars: u64,
    #[serde(skip)]
    kept_chars: u64,
}

impl Tally {
    fn add(&mut self, r: &SuggestionRecord) {
        self.shown += 1;
        match r.outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Partial => self.partial += 1,
            Outcome::Dismissed => self.dismissed += 1,
        }
        self.shown_chars += r.shown_chars;
        self.kept_chars += r.accepted_chars.min(r.shown_chars);
    }

    fn finish(mut self, key: &str) -> Tally {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        self.key = key.to_string();
        self.acceptance_rate = ratio(self.accepted, self.shown);
        self.kept_rate = ratio(self.accepted + self.partial, self.shown);
        self.kept_chars_rate = ratio(self.kept_chars, self.shown_chars);
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub source: PathBuf,
    pub files: Vec<PathBuf>,
    pub suggestions: u64,
    /// Records the server dropped because its writer fell behind.
    pub dropped: u64,
    /// Lines that are not records (damaged, or a newer format).
    pub skipped_lines: usize,
    pub overall: Tally,
    pub by_language: Vec<Tally>,
    pub by_length: Vec<Tally>,
    pub by_latency: Vec<Tally>,
}

fn bucket(value: u64, buckets: &[(u64, &'static str)], inclusive: bool) -> &'static str {
    buckets
        .iter()
        .find(|(bound, _)| {
            if inclusive {
                value <= *bound
            } else {
                value < *bound
            }
        })
        .map_or("?", |(_, label)| label)
}

/// Tallies by a key, in the order of `order` (labels with no suggestions are left out).
fn grouped(
    records: &[&SuggestionRecord],
    key: impl Fn(&SuggestionRecord) -> String,
    order: Option<&[(u64, &str)]>,
) -> Vec<Tally> {
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for r in records {
        groups.entry(key(r)).or_default().add(r);
    }
    let mut out: Vec<Tally> = groups.into_iter().map(|(k, t)| t.finish(&k)).collect();
    match order {
        Some(order) => {
            out.sort_by_key(|t| order.iter().position(|(_, l)| *l == t.key));
        }
        None => out.sort_by(|a, b| b.shown.cmp(&a.shown).then(a.key.cmp(&b.key))),
    }
    out
}

pub fn report(source: PathBuf) -> Result<Report> {
    let read = read_records(&source)?;
    let mut dropped = 0;
    let mut suggestions = Vec::new();
    for record in &read.records {
        match record {
            Record::Suggestion(r) => suggestions.push(r.as_ref()),
            Record::Dropped(d) => dropped += d.count,
        }
    }
    let mut overall = Tally::default();
    for r in &suggestions {
        overall.add(r);
    }
    Ok(Report {
        source,
        files: read.files,
        suggestions: suggestions.len() as u64,
        dropped,
        skipped_lines: read.skipped_lines,
        overall: overall.finish(""),
        by_language: grouped(&suggestions, |r| r.language.clone(), None),
        by_length: grouped(
            &suggestions,
            |r| bucket(r.shown_chars, LENGTH_BUCKETS, true).to_string(),
            Some(LENGTH_BUCKETS),
        ),
        by_latency: grouped(
            &suggestions,
            |r| bucket(r.latency_ms, LATENCY_BUCKETS, false).to_string(),
            Some(LATENCY_BUCKETS),
        ),
    })
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn table(title: &str, rows: &[Tally]) {
    print_out(&format!("\n{title}"));
    print_out(&format!(
        "  {:<16} {:>7} {:>9} {:>8} {:>10} {:>8} {:>7}",
        "", "shown", "accepted", "partial", "dismissed", "accept", "kept"
    ));
    for t in rows {
        print_out(&format!(
            "  {:<16} {:>7} {:>9} {:>8} {:>10} {:>8} {:>7}",
            t.key,
            t.shown,
            t.accepted,
            t.partial,
            t.dismissed,
            percent(t.acceptance_rate),
            percent(t.kept_rate)
        ));
    }
}

pub fn run(args: &StatsArgs) -> Result<()> {
    let source = match &args.path {
        Some(p) => p.clone(),
        None => feedback_dir().context(
            "cannot tell where feedback lives: set MOAT_FEEDBACK_DIR, MOAT_HOME or HOME",
        )?,
    };
    let report = report(source)?;
    if args.json {
        print_out(&serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let o = &report.overall;
    print_out(&format!(
        "{}: {} suggestions in {} file(s){}{}",
        report.source.display(),
        report.suggestions,
        report.files.len(),
        if report.dropped > 0 {
            format!(", {} dropped by a busy writer", report.dropped)
        } else {
            String::new()
        },
        if report.skipped_lines > 0 {
            format!(", {} unreadable lines skipped", report.skipped_lines)
        } else {
            String::new()
        },
    ));
    print_out(&format!(
        "accepted {} ({}), partly accepted {}, dismissed {}; {} of shown characters kept",
        o.accepted,
        percent(o.acceptance_rate),
        o.partial,
        o.dismissed,
        percent(o.kept_chars_rate)
    ));
    table("by language", &report.by_language);
    table("by length", &report.by_length);
    table("by latency", &report.by_latency);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_rates() {
        assert_eq!(bucket(10, LENGTH_BUCKETS, true), "1-10 chars");
        assert_eq!(bucket(11, LENGTH_BUCKETS, true), "11-30 chars");
        assert_eq!(bucket(5000, LENGTH_BUCKETS, true), "201+ chars");
        assert_eq!(bucket(99, LATENCY_BUCKETS, false), "<100 ms");
        assert_eq!(bucket(100, LATENCY_BUCKETS, false), "100-249 ms");

        let dir = std::env::temp_dir().join(format!("moat-stats-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = |language: &str, outcome: &str, chars: u64, kept: u64, ms: u64| {
            format!(
                r#"{{"v":1,"kind":"suggestion","ts_ms":1,"session":"s","id":1,"method":"inline","client":null,"language":"{language}","model":null,"outcome":"{outcome}","signal":"command","latency_ms":{ms},"prompt_tokens":null,"snippets":null,"shown_chars":{chars},"shown_lines":1,"accepted_chars":{kept},"decided_after_ms":5}}"#
            )
        };
        let text = [
            line("python", "accepted", 8, 8, 50),
            line("python", "dismissed", 40, 0, 300),
            line("rust", "partial", 20, 5, 120),
            r#"{"v":1,"kind":"dropped","ts_ms":2,"count":3}"#.to_string(),
        ]
        .join("\n");
        std::fs::write(dir.join("feedback.jsonl"), text).unwrap();
        let r = report(dir.clone()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((r.suggestions, r.dropped), (3, 3));
        assert_eq!(
            (r.overall.accepted, r.overall.partial, r.overall.dismissed),
            (1, 1, 1)
        );
        assert!((r.overall.kept_rate - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.by_language[0].key, "python");
        assert_eq!(r.by_language[0].shown, 2);
        let lengths: Vec<&str> = r.by_length.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(lengths, ["1-10 chars", "11-30 chars", "31-80 chars"]);
        let latency: Vec<&str> = r.by_latency.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(latency, ["<100 ms", "100-249 ms", "250-499 ms"]);
    }
}
