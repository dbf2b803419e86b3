//! One completion, start to end: gate → windows → prompt (with token healing) → generate →
//! post-process. Plain data in, plain data out.

use std::time::{Duration, Instant};

use moat_model::{
    Backend, CancelToken, ContextFormat, GenerateRequest, Healing, ModelError, ModelTokenizer,
};
use moat_syntax::{Language, SyntaxTree};

use crate::extent::Extent;
use crate::postprocess::{PostContext, postprocess};
use crate::window::{Windows, choose_windows};

#[derive(Debug, Clone, PartialEq)]
pub struct CompletionSettings {
    pub max_new_tokens: usize,
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    /// Allow multi-line suggestions (on a fresh line).
    pub multiline: bool,
    /// Most lines in a multi-line suggestion.
    pub max_lines: usize,
    pub skip_in_comments: bool,
    pub skip_in_strings: bool,
    /// Give the model the file's head (imports) and the signatures of definitions that lie
    /// above the prefix window.
    pub file_context: bool,
    /// Share of the prompt held back for repository snippets when there are any. It only bites
    /// on models whose context cannot hold the full windows plus context (a 512-token model:
    /// without it the windows fill the prompt and no snippet ever fits).
    pub repo_context_share: f32,
    /// The workspace's name: with the `repository` context format, the prompt opens with
    /// `<|repo_name|>name` as in the model's repository-level training data.
    pub repo_name: Option<String>,
    /// How other files are laid out; `None` = the model's (`ModelTokenizer::context_format`).
    /// Set only to compare layouts (`moat eval --context-format`).
    pub context_format: Option<ContextFormat>,
    /// Most time one request may spend computing prompt tokens its model has not cached, judged
    /// by the model's measured cost per token ([`Backend::prefill_cost_per_token`]). A request
    /// over it (a file just opened, a jump to another place) gets a short prompt (the lines
    /// around the cursor, no other files) that answers now, while the full prompt is computed
    /// in the background for the next request. `None`: every request gets the full prompt.
    pub cold_prompt_budget: Option<Duration>,
}

/// The smallest short prompt, in tokens (below this the model sees too little to help).
const COLD_PROMPT_MIN_TOKENS: usize = 64;
/// Most tokens a short prompt's answer (one line) may have: a code line is rarely longer, and a
/// model looping on one line (`a, a, a, …`) would otherwise spend what the short prompt saved.
const COLD_ANSWER_MAX_TOKENS: usize = 32;

impl Default for CompletionSettings {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            prefix_tokens: 1024,
            suffix_tokens: 256,
            multiline: true,
            max_lines: 8,
            skip_in_comments: false,
            skip_in_strings: false,
            file_context: true,
            repo_context_share: 0.3,
            repo_name: None,
            context_format: None,
            cold_prompt_budget: None,
        }
    }
}

/// A piece of context from elsewhere in the workspace, placed before the FIM prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub path: String,
    pub text: String,
}

pub struct CompletionInput<'a> {
    pub text: &'a str,
    /// Byte offset of the cursor in `text`.
    pub cursor: usize,
    /// The file's path (workspace-relative when known), used to label context.
    pub path: Option<&'a str>,
    pub language: Option<Language>,
    /// The syntax tree of `text`, if the language is known and the file not too large.
    pub tree: Option<&'a SyntaxTree>,
    /// Workspace context, least useful first.
    pub snippets: &'a [Snippet],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    SingleLine,
    MultiLine,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompletionResult {
    /// The text to insert at the cursor; empty when there is nothing worth showing.
    pub text: String,
    pub mode: Option<Mode>,
    /// Why the model was not asked, when it was not.
    pub skipped: Option<&'static str>,
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    pub elapsed: Duration,
    /// The full prompt would have cost more than [`CompletionSettings::cold_prompt_budget`]:
    /// a short one was used (the caller may compute the full one in the background).
    pub short_prompt: bool,
}

/// Decides the mode from the text around the cursor: a fresh (blank) line may get a block, the
/// middle of a line gets the rest of that line.
fn mode_at(text: &str, cursor: usize, settings: &CompletionSettings) -> Mode {
    let line_start = text[..cursor].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[cursor..].find('\n').map_or(text.len(), |i| cursor + i);
    let before = &text[line_start..cursor];
    let after = text[cursor..line_end].trim();
    let only_closers = after
        .chars()
        .all(|c| matches!(c, ')' | ']' | '}' | ';' | ','));
    if settings.multiline && before.trim().is_empty() && only_closers {
        Mode::MultiLine
    } else {
        Mode::SingleLine
    }
}

/// Runs the pipeline. Blocking (the model runs here): call it from a blocking thread.
pub fn complete(
    input: &CompletionInput<'_>,
    settings: &CompletionSettings,
    backend: &dyn Backend,
    cancel: &CancelToken,
) -> Result<CompletionResult, ModelError> {
    let start = Instant::now();
    let text = input.text;
    let cursor = text.floor_char_boundary(input.cursor.min(text.len()));
    if let Some(tree) = input.tree {
        let info = tree.cursor_info(text, cursor);
        if settings.skip_in_comments && info.in_comment {
            return Ok(CompletionResult {
                skipped: Some("inside a comment"),
                ..Default::default()
            });
        }
        if settings.skip_in_strings && info.in_string {
            return Ok(CompletionResult {
                skipped: Some("inside a string"),
                ..Default::default()
            });
        }
    }
    let mode = mode_at(text, cursor, settings);
    let tokenizer = backend.tokenizer();
    let context_limit = backend
        .context_length()
        .saturating_sub(settings.max_new_tokens + 8);
    let reserve = if input.snippets.is_empty() {
        0
    } else {
        (context_limit as f32 * settings.repo_context_share.clamp(0.0, 0.9)) as usize
    };
    let window_limit = context_limit - reserve;
    let full = Budget {
        prefix: settings.prefix_tokens.min(window_limit * 3 / 4).max(1),
        suffix: settings.suffix_tokens.min(window_limit / 4),
        context: true,
    };
    let mut prompt = build_prompt(input, cursor, settings, tokenizer, context_limit, full);
    let short = cold_prompt_tokens(settings, backend).and_then(|limit| {
        let uncached = prompt.ids.len() - backend.cached_prefix(&prompt.ids);
        (uncached > limit).then(|| short_prompt_settings(settings, limit))
    });
    let mut mode = mode;
    let mut max_new_tokens = settings.max_new_tokens;
    if let Some(short) = &short {
        prompt = build_prompt(
            input,
            cursor,
            short,
            tokenizer,
            context_limit,
            Budget::of(short),
        );
        // One short line: a block's decoding would cost what the short prompt saved.
        mode = Mode::SingleLine;
        max_new_tokens = short.max_new_tokens;
    }
    let Prompt { windows, ids, heal } = prompt;
    let line_comment = input.language.and_then(|l| l.line_comment());

    let line_start = text[..cursor].rfind('\n').map_or(0, |i| i + 1);
    // On a line that holds only indentation, the suggestion must not begin with a line break.
    let before_on_line = &text[line_start..cursor];
    // A blank line (only indentation, or nothing, on both sides of the cursor): the suggestion
    // starts here, never with a line break (a blank line first is never what the user wants:
    // it moved 26 of 200 held-out lines to the next line, most of them at column 0).
    let rest_of_line = text[cursor..].split('\n').next().unwrap_or_default();
    let indented_blank = before_on_line.trim().is_empty() && rest_of_line.trim().is_empty();
    let extent = Extent::new(
        &text[windows.prefix.clone()],
        &text[cursor..],
        settings.max_lines,
        line_comment,
    );
    let heal_len = heal.len();
    let stop = move |bytes: &[u8]| -> Option<usize> {
        let body = bytes.get(heal_len..)?;
        match mode {
            Mode::SingleLine => body
                .iter()
                .position(|&b| b == b'\n')
                .or_else(|| line_loop(body))
                .map(|i| heal_len + i),
            Mode::MultiLine => extent.cut(body, false).map(|i| heal_len + i),
        }
    };
    let request = GenerateRequest::new(
        ids,
        max_new_tokens,
        Healing::new(heal).no_line_break_first(indented_blank),
        Some(&stop),
    );
    let generation = backend.generate(&request, cancel)?;
    let raw = generation.bytes.get(heal_len..).unwrap_or_default();
    let raw = String::from_utf8_lossy(trim_incomplete_utf8(raw)).into_owned();
    let post = PostContext {
        prefix: &text[windows.prefix.clone()],
        suffix: &text[cursor..],
        mode,
        line_comment,
        max_lines: settings.max_lines,
    };
    let suggestion = postprocess(&raw, &post);
    Ok(CompletionResult {
        text: suggestion,
        mode: Some(mode),
        skipped: None,
        prompt_tokens: request.prompt.len(),
        reused_tokens: generation.reused_tokens,
        generated_tokens: generation.tokens.len(),
        elapsed: start.elapsed(),
        short_prompt: short.is_some(),
    })
}

/// Shortest repeated piece [`line_loop`] looks for (below it, `0, 0, 0` is data, not a loop).
const LOOP_MIN_PERIOD: usize = 4;
/// Longest repeated piece [`line_loop`] looks for.
const LOOP_MAX_PERIOD: usize = 32;

/// Where a line that has begun to loop should end: when it ends with the same piece (4–32
/// bytes) four times in a row, after the first of them (`"{x} y {x} y {x} y {x} y ` →
/// `"{x} y `; three, as in `[1.0, 1.0, 1.0]`, is still data).
/// A model that loops on one line would otherwise spend the whole token budget on it. Runs of
/// a shorter period are data, not loops (`// ========`, `[0, 0, 0, 0]`).
pub(crate) fn line_loop(line: &[u8]) -> Option<usize> {
    let n = line.len();
    let periodic = |s: &[u8], q: usize| s.iter().skip(q).zip(s).all(|(a, b)| a == b);
    (LOOP_MIN_PERIOD..=LOOP_MAX_PERIOD.min(n / 4)).find_map(|p| {
        let tail = &line[n - 4 * p..];
        (periodic(tail, p) && !(1..LOOP_MIN_PERIOD).any(|q| periodic(tail, q))).then(|| n - 3 * p)
    })
}

/// Token budgets for one prompt.
#[derive(Debug, Clone, Copy)]
struct Budget {
    prefix: usize,
    suffix: usize,
    /// Repository snippets and the file's own head and signatures.
    context: bool,
}

impl Budget {
    /// The windows `settings` ask for, with context when they ask for the file's own.
    fn of(settings: &CompletionSettings) -> Self {
        Self {
            prefix: settings.prefix_tokens,
            suffix: settings.suffix_tokens,
            context: settings.file_context,
        }
    }
}

/// The settings of the short prompt a request over the cold-prompt budget gets: about `tokens`
/// tokens of windows (three quarters before the cursor), nothing from elsewhere, one line.
/// Public so that `moat eval --short-prompt` measures exactly this prompt.
pub fn short_prompt_settings(settings: &CompletionSettings, tokens: usize) -> CompletionSettings {
    // Leave room for the FIM markers and a healed token or two.
    let windows = tokens.saturating_sub(6).max(COLD_PROMPT_MIN_TOKENS);
    CompletionSettings {
        prefix_tokens: windows * 3 / 4,
        suffix_tokens: windows / 4,
        file_context: false,
        multiline: false,
        max_new_tokens: settings.max_new_tokens.min(COLD_ANSWER_MAX_TOKENS),
        cold_prompt_budget: None,
        ..settings.clone()
    }
}

/// A prompt and what reading its answer back needs.
struct Prompt {
    windows: Windows,
    ids: Vec<u32>,
    /// Token healing: the bytes the prompt backed up over, which generation re-generates first.
    heal: Vec<u8>,
}

/// How many uncached prompt tokens fit the settings' cold-prompt budget at the model's measured
/// cost; `None` when there is no budget or nothing was measured yet.
fn cold_prompt_tokens(settings: &CompletionSettings, backend: &dyn Backend) -> Option<usize> {
    let budget = settings.cold_prompt_budget?;
    let per_token = backend
        .prefill_cost_per_token()?
        .max(Duration::from_nanos(1));
    let tokens = budget.as_nanos() / per_token.as_nanos();
    Some(
        usize::try_from(tokens)
            .unwrap_or(usize::MAX)
            .max(COLD_PROMPT_MIN_TOKENS),
    )
}

/// Chooses the windows within `budget` and lays out the prompt: context before the FIM prompt
/// (repository snippets, then this file's head and the definitions above the window: most
/// useful last, nearest the cursor; only what fits), then the windows, with token healing.
fn build_prompt(
    input: &CompletionInput<'_>,
    cursor: usize,
    settings: &CompletionSettings,
    tokenizer: &ModelTokenizer,
    context_limit: usize,
    budget: Budget,
) -> Prompt {
    let text = input.text;
    let windows = choose_windows(
        text,
        cursor,
        input.tree,
        tokenizer,
        budget.prefix,
        budget.suffix,
    );
    let mut snippets: Vec<Snippet> = Vec::new();
    if budget.context {
        snippets.extend_from_slice(input.snippets);
        if settings.file_context
            && let Some(own) = file_context(text, windows.prefix.start, input.tree, input.path)
        {
            snippets.push(own);
        }
    }
    let room = context_limit.saturating_sub(windows.prefix_ids.len() + windows.suffix_ids.len());
    let layout = Layout {
        tokenizer,
        format: settings
            .context_format
            .unwrap_or_else(|| tokenizer.context_format()),
        repo_name: settings.repo_name.as_deref(),
        current_path: input.path,
        line_comment: input.language.and_then(|l| l.line_comment()),
    };
    let context_ids = layout.render(&snippets, room);

    // Token healing: back up over the prefix's last token (and the whitespace tokens before the
    // cursor); generation must re-generate those bytes first.
    let mut prefix_ids = windows.prefix_ids.clone();
    let heal_tokens = if tokenizer.prefix_last() {
        heal_count(tokenizer, &prefix_ids)
    } else {
        0
    };
    let heal = tokenizer.decode_bytes(&prefix_ids[prefix_ids.len() - heal_tokens..]);
    prefix_ids.truncate(prefix_ids.len() - heal_tokens);
    let ids = tokenizer.fim_prompt(&context_ids, &prefix_ids, &windows.suffix_ids);
    Prompt { windows, ids, heal }
}

/// Most bytes of a file's own context (head + signatures).
const FILE_CONTEXT_BYTES: usize = 1500;
/// How far above the window to look for definitions.
const CONTEXT_SCAN_BYTES: usize = 32 * 1024;
/// How much of the file's start can be its head.
const HEAD_BYTES: usize = 4096;

/// The part of the file the prefix window cut off, condensed: its first lines (imports, module
/// header) and the signatures of definitions that start above the window. Depends only on text
/// before the window, so it does not change while the user types.
pub(crate) fn file_context(
    text: &str,
    window_start: usize,
    tree: Option<&SyntaxTree>,
    path: Option<&str>,
) -> Option<Snippet> {
    if window_start == 0 {
        return None;
    }
    let above = &text[..window_start];
    // Only the definitions near the window (a big file holds tens of thousands) and the head.
    let near = window_start.saturating_sub(CONTEXT_SCAN_BYTES);
    let defs = tree
        .map(|t| t.definitions_in(text, near..window_start))
        .unwrap_or_default();
    let head_end = text[..window_start.min(HEAD_BYTES)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let head_defs = tree
        .map(|t| t.definitions_in(text, 0..head_end))
        .unwrap_or_default();
    let first_def = head_defs
        .iter()
        .map(|d| d.range.start)
        .min()
        .unwrap_or(head_end)
        .min(head_end);
    let mut out = String::new();
    for line in above[..first_def].lines().take(30) {
        if out.len() + line.len() > FILE_CONTEXT_BYTES / 2 {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    let mut signatures = Vec::new();
    // Callables and types; constants are too many to list and rarely what the cursor needs.
    let wanted = |kind: &str| {
        matches!(
            kind,
            "function" | "method" | "class" | "interface" | "type" | "macro"
        )
    };
    for d in defs
        .iter()
        .filter(|d| d.range.start < window_start && wanted(&d.kind))
    {
        let indent: String = text
            [text[..d.range.start].rfind('\n').map_or(0, |i| i + 1)..d.range.start]
            .chars()
            .take_while(|c| c.is_whitespace())
            .collect();
        signatures.push(format!("{indent}{}", d.signature));
    }
    // Keep the signatures nearest the window when there are too many.
    let mut tail = Vec::new();
    let mut used = out.len();
    for sig in signatures.iter().rev() {
        if used + sig.len() + 1 > FILE_CONTEXT_BYTES {
            break;
        }
        used += sig.len() + 1;
        tail.push(sig.as_str());
    }
    tail.reverse();
    if !tail.is_empty() {
        out.truncate(out.trim_end().len());
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&tail.join("\n"));
        out.push('\n');
    }
    if out.trim().is_empty() {
        return None;
    }
    Some(Snippet {
        path: path.unwrap_or("this file").to_string(),
        text: out,
    })
}

/// How repository context becomes prompt tokens before the FIM template.
struct Layout<'a> {
    tokenizer: &'a ModelTokenizer,
    format: ContextFormat,
    repo_name: Option<&'a str>,
    current_path: Option<&'a str>,
    line_comment: Option<&'a str>,
}

impl Layout<'_> {
    /// The context for `snippets` (least useful first) within `room` tokens: the most useful
    /// ones that fit, in their order, so the most useful ends nearest the current file. Nothing
    /// at all when no snippet fits (no repository header without content).
    fn render(&self, snippets: &[Snippet], room: usize) -> Vec<u32> {
        let (header, footer) = self.frame();
        let Some(room) = room.checked_sub(header.len() + footer.len()) else {
            return Vec::new();
        };
        let mut body: Vec<Vec<u32>> = Vec::new();
        let mut used = 0;
        for snippet in snippets.iter().rev() {
            let ids = self.snippet(snippet);
            if used + ids.len() > room {
                continue; // a smaller, less useful one may still fit
            }
            used += ids.len();
            body.push(ids);
        }
        if body.is_empty() {
            return Vec::new();
        }
        let mut out = header;
        for ids in body.into_iter().rev() {
            out.extend(ids);
        }
        out.extend(footer);
        out
    }

    /// What opens and closes the context: in the repository format, `<|repo_name|>name\n` and
    /// `<|file_sep|>current-path\n` (the current file's FIM prompt follows as its content).
    fn frame(&self) -> (Vec<u32>, Vec<u32>) {
        let t = self.tokenizer;
        match (self.format, t.repo_name(), t.file_separator()) {
            (ContextFormat::Repository, Some(repo), Some(sep)) => {
                let header = match self.repo_name {
                    Some(name) if !name.trim().is_empty() => {
                        let mut ids = vec![repo];
                        ids.extend(t.encode(&format!("{}\n", name.trim())));
                        ids
                    }
                    _ => Vec::new(),
                };
                let footer = match self.current_path {
                    Some(path) if !path.is_empty() => {
                        let mut ids = vec![sep];
                        ids.extend(t.encode(&format!("{path}\n")));
                        ids
                    }
                    _ => Vec::new(),
                };
                (header, footer)
            }
            _ => (Vec::new(), Vec::new()),
        }
    }

    /// One snippet: `<file_sep>path\ncode\n` with a file separator, else path-labelled and
    /// commented out in the file's language.
    fn snippet(&self, snippet: &Snippet) -> Vec<u32> {
        let t = self.tokenizer;
        let code = snippet.text.trim_end();
        let separator = match self.format {
            ContextFormat::Repository | ContextFormat::FileSeparator => t.file_separator(),
            ContextFormat::Comments => None,
        };
        match (separator, self.line_comment) {
            (Some(sep), _) => {
                let mut ids = vec![sep];
                ids.extend(t.encode(&format!("{}\n{code}\n", snippet.path)));
                ids
            }
            (None, Some(c)) => {
                let mut s = format!("{c} {}\n", snippet.path);
                for line in code.lines() {
                    s.push_str(&format!("{c} {line}\n"));
                }
                t.encode(&s)
            }
            (None, None) => t.encode(&format!("{}\n{code}\n", snippet.path)),
        }
    }
}

/// Most prompt tokens that token healing backs up over.
const HEAL_MAX_TOKENS: usize = 4;
/// Most bytes of whitespace tokens it backs up over (beyond the last token).
const HEAL_MAX_BYTES: usize = 64;

/// How many tokens at the end of `prefix_ids` token healing backs up over. Tokenizers split
/// text differently at its end than in the middle: a word cut at the cursor is a rarer token than
/// the whole word, and a byte-level BPE (GPT-2, Qwen) ends `"):\n    "` with a four-space token that
/// in the middle of code is always split (`"   "` + `" return"`), so a model that sees it at the
/// end of its prompt predicts what follows such a token in training: a line break. Backing up
/// and letting generation re-create the bytes lets the model choose the tokens it would have
/// used.
///
/// The rule: the last token always (unless special, as before); when it is whitespace only,
/// also the whitespace-only tokens before it, up to [`HEAL_MAX_TOKENS`] tokens and
/// [`HEAL_MAX_BYTES`] bytes. Never a special token.
pub(crate) fn heal_count(tokenizer: &ModelTokenizer, prefix_ids: &[u32]) -> usize {
    let whitespace = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_whitespace);
    let mut count = 0;
    let mut bytes = 0;
    for &id in prefix_ids.iter().rev() {
        if tokenizer.is_special(id) || count == HEAL_MAX_TOKENS {
            break;
        }
        let b = tokenizer.token_bytes(id);
        if count > 0 && (!whitespace(b) || bytes + b.len() > HEAL_MAX_BYTES) {
            break;
        }
        count += 1;
        bytes += b.len();
        if !whitespace(b) {
            break;
        }
    }
    count
}

/// Drops a trailing partial UTF-8 sequence (a token boundary can split a character).
fn trim_incomplete_utf8(bytes: &[u8]) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes,
        Err(e) if e.error_len().is_none() => &bytes[..e.valid_up_to()],
        Err(_) => bytes,
    }
}
