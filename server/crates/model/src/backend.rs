//! The [`Backend`] trait: one narrow interface for every way of running a model (in-process ONNX,
//! remote HTTP, the fake used in tests), chosen by data, like ripgrep's `Matcher`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::{ModelError, ModelTokenizer};

/// Cancellation: checked by the backend between steps, and able to interrupt a step in flight
/// through a hook the backend registers for the step's duration ([`CancelToken::on_cancel`]).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<CancelState>);

#[derive(Default)]
struct CancelState {
    cancelled: AtomicBool,
    /// Hooks to call on cancellation, by id; called with the lock held, so once
    /// [`CancelHook`]'s drop returns its hook is not running and never will.
    hooks: std::sync::Mutex<Vec<(u64, CancelFn)>>,
}

type CancelFn = Box<dyn Fn() + Send>;

impl std::fmt::Debug for CancelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelState")
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        let hooks = self.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
        if !self.0.cancelled.swap(true, Ordering::SeqCst) {
            for (_, hook) in hooks.iter() {
                hook();
            }
        }
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }
    /// Calls `hook` when the token is cancelled (at once if it already is) until the returned
    /// guard is dropped. For backends that can interrupt a computation in flight.
    pub fn on_cancel(&self, hook: impl Fn() + Send + 'static) -> CancelHook {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed) as u64;
        let mut hooks = self.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
        if self.0.cancelled.load(Ordering::SeqCst) {
            hook();
        } else {
            hooks.push((id, Box::new(hook)));
        }
        CancelHook {
            token: self.clone(),
            id,
        }
    }
}

/// Keeps a [`CancelToken::on_cancel`] hook registered; dropping it removes the hook.
#[must_use = "the hook is removed when this is dropped"]
pub struct CancelHook {
    token: CancelToken,
    id: u64,
}

impl Drop for CancelHook {
    fn drop(&mut self) {
        let mut hooks = self.token.0.hooks.lock().unwrap_or_else(|e| e.into_inner());
        hooks.retain(|(id, _)| *id != self.id);
    }
}

/// Called with the bytes generated so far; returns how many of them to keep when generation should
/// stop there (e.g. at the end of the line for a single-line suggestion), or `None` to go on.
pub type StopCheck<'a> = &'a (dyn Fn(&[u8]) -> Option<usize> + Sync);

pub struct GenerateRequest<'a> {
    /// The whole prompt, token ids.
    pub prompt: Vec<u32>,
    /// Most tokens to generate, those that re-generate healed bytes included. Build requests with
    /// [`GenerateRequest::new`] to give the budget in tokens *after* the healed bytes.
    pub max_new_tokens: usize,
    /// Token healing and the other constraints on decoding (see [`Healing`]). The name is
    /// historical: the constraint once applied to the first generated token only.
    pub first_token_prefix: Healing,
    pub stop: Option<StopCheck<'a>>,
}

/// Token healing: the prompt was backed up over its last token(s) and generation must first
/// re-generate these bytes. Decoding is constrained while they are not all generated: every token's
/// bytes must agree with the healed bytes that remain (start with them, or be a prefix of them),
/// and no special token may come; afterwards decoding is free. The healed bytes are the start of
/// [`Generation::bytes`]; callers drop them (and run their stop checks on what follows).
///
/// One more constraint may come with it: `no_line_break_first` bans a line break as the first
/// byte after the healed bytes that is not a space or tab (a suggestion on a line that holds only
/// indentation must not begin with a line break).
///
/// It also carries the progress of the request being served (bytes generated, tokens that only
/// re-generated healed bytes), written by [`GenerateRequest::push_token`] and read by
/// [`pick_token`]; a request is served by one `generate` call at a time.
#[derive(Debug, Default)]
pub struct Healing {
    bytes: Vec<u8>,
    no_line_break_first: bool,
    /// Tokens allowed after the healed bytes (`GenerateRequest::new`); `None`: only
    /// `max_new_tokens` counts.
    budget: Option<usize>,
    /// Bytes generated so far (before any stop-check cut).
    generated: AtomicUsize,
    /// A byte other than a space or tab came after the healed bytes.
    body_started: AtomicBool,
    /// Generated tokens whose bytes all lie within the healed bytes.
    heal_tokens: AtomicUsize,
}

impl Healing {
    /// No healing, no constraint.
    pub fn none() -> Self {
        Self::default()
    }

    /// Generation must begin with `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            ..Self::default()
        }
    }

    /// Bans a line break before the first byte after the healed bytes that is not a space or tab.
    pub fn no_line_break_first(mut self, yes: bool) -> Self {
        self.no_line_break_first = yes;
        self
    }

    /// The healed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn bans_line_break_first(&self) -> bool {
        self.no_line_break_first
    }

    /// Whether `token` (its bytes) may come next, after `generated` bytes of which the ones past
    /// the healed bytes are all spaces and tabs unless `body_started`.
    fn allows(&self, token: &[u8], special: bool, generated: usize, body_started: bool) -> bool {
        let healing = generated < self.bytes.len();
        if special {
            return !healing;
        }
        if healing && token.is_empty() {
            return false;
        }
        let mut banning = self.no_line_break_first && !body_started;
        for (i, &b) in token.iter().enumerate() {
            let at = generated + i;
            if let Some(&want) = self.bytes.get(at) {
                if b != want {
                    return false;
                }
                continue;
            }
            if !banning {
                break;
            }
            match b {
                b'\n' | b'\r' => return false,
                b' ' | b'\t' => {}
                _ => banning = false,
            }
        }
        true
    }

    /// Whether decoding is constrained after `generated` bytes.
    fn constrains(&self, generated: usize, body_started: bool) -> bool {
        generated < self.bytes.len() || (self.no_line_break_first && !body_started)
    }

    /// Records the generated bytes after a token was appended; `first`: it was the first token.
    fn advance(&self, bytes: &[u8], first: bool) {
        let heal_len = self.bytes.len();
        if first {
            self.heal_tokens.store(0, Ordering::Relaxed);
            self.body_started.store(false, Ordering::Relaxed);
        }
        if bytes.len() <= heal_len {
            self.heal_tokens.fetch_add(1, Ordering::Relaxed);
        }
        self.generated.store(bytes.len(), Ordering::Relaxed);
        if bytes
            .get(heal_len..)
            .is_some_and(|body| body.iter().any(|&b| b != b' ' && b != b'\t'))
        {
            self.body_started.store(true, Ordering::Relaxed);
        }
    }
}

impl From<Vec<u8>> for Healing {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl std::ops::Deref for Healing {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token from the manifest.
    StopToken,
    /// The caller's stop check.
    StopCheck,
    MaxTokens,
    ContextFull,
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub tokens: Vec<u32>,
    /// Generated bytes (after the stop check's cut), without any stop token.
    pub bytes: Vec<u8>,
    pub finish: FinishReason,
    /// Prompt tokens served from the KV cache of the previous request.
    pub reused_tokens: usize,
    /// Prompt tokens computed for this request.
    pub computed_tokens: usize,
    pub time_to_first_token: Duration,
    pub total_time: Duration,
}

pub trait Backend: Send + Sync {
    /// Human-readable description (name, layout, threads).
    fn describe(&self) -> String;
    fn tokenizer(&self) -> &ModelTokenizer;
    fn context_length(&self) -> usize;
    /// Greedy generation. Blocks: run it on a blocking thread. Checks `cancel` at every step.
    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError>;
    /// Work ahead: brings the KV cache to `prompt` without generating, in small steps that check
    /// `cancel` between them (a request waiting for the model waits at most one step). Returns
    /// the prompt tokens computed. Backends without a cache of their own do nothing.
    fn prefill(&self, prompt: &[u32], cancel: &CancelToken) -> Result<usize, ModelError> {
        let _ = (prompt, cancel);
        Ok(0)
    }
    /// How many of `prompt`'s first tokens a KV cache already holds (the longest prefix over
    /// the backend's caches): a request for `prompt` would compute only the rest. Backends
    /// without a cache of their own say 0.
    fn cached_prefix(&self, prompt: &[u32]) -> usize {
        let _ = prompt;
        0
    }
    /// What computing one more prompt token costs here, measured on this machine's recent
    /// prompts; `None` while unknown (nothing computed yet, or a backend that does not measure).
    fn prefill_cost_per_token(&self) -> Option<Duration> {
        None
    }
}

impl<'a> GenerateRequest<'a> {
    /// A request for at most `max_new_tokens` tokens after the healed bytes: the tokens that only
    /// re-generate healed bytes do not count (there are at most as many as healed bytes, so
    /// `max_new_tokens` is raised by that many and [`Self::push_token`] ends generation when the
    /// budget after the healed bytes is spent).
    pub fn new(
        prompt: Vec<u32>,
        max_new_tokens: usize,
        mut healing: Healing,
        stop: Option<StopCheck<'a>>,
    ) -> Self {
        let cap = max_new_tokens.saturating_add(healing.bytes.len());
        healing.budget = Some(max_new_tokens);
        Self {
            prompt,
            max_new_tokens: cap,
            first_token_prefix: healing,
            stop,
        }
    }

    /// Most tokens to generate after the healed bytes (what a server that is given the healed
    /// bytes as part of the prompt should be asked for).
    pub fn budget_after_healing(&self) -> usize {
        self.first_token_prefix
            .budget
            .unwrap_or(self.max_new_tokens)
    }

    /// The prompt must leave room in the context for at least one generated token.
    pub(crate) fn check_fits(&self, context_length: usize) -> Result<(), ModelError> {
        if self.prompt.len() >= context_length {
            return Err(ModelError::PromptTooLong {
                len: self.prompt.len(),
                max: context_length,
            });
        }
        Ok(())
    }

    /// Appends a generated token and its bytes, then applies the caller's stop check; returns
    /// true when that check ended generation (the bytes are cut where it said) or when the token
    /// budget after the healed bytes is spent (see [`Self::new`]).
    pub(crate) fn push_token(
        &self,
        tokenizer: &ModelTokenizer,
        id: u32,
        tokens: &mut Vec<u32>,
        bytes: &mut Vec<u8>,
    ) -> bool {
        tokens.push(id);
        bytes.extend_from_slice(tokenizer.token_bytes(id));
        let heal = &self.first_token_prefix;
        heal.advance(bytes, tokens.len() == 1);
        if let Some(stop) = self.stop
            && let Some(keep) = stop(bytes)
        {
            bytes.truncate(keep);
            return true;
        }
        // The budget after the healed bytes is spent (when the cap on all tokens ends generation
        // here anyway, the backend's own check does it and reports `MaxTokens`).
        let free = tokens.len() - heal.heal_tokens.load(Ordering::Relaxed).min(tokens.len());
        heal.budget
            .is_some_and(|budget| free >= budget && tokens.len() < self.max_new_tokens)
    }
}

/// The greedy choice under the constraints of [`Healing`]: while healed bytes remain, only tokens
/// that agree with them (and no special token); then, with `no_line_break_first`, no line break
/// before the first byte of substance. `first`: no token was generated yet for this request (the
/// progress recorded by an earlier `generate` call with the same request is ignored). Shared by
/// all local backends.
pub(crate) fn pick_token(
    logits: &[f32],
    tokenizer: &ModelTokenizer,
    first: bool,
    heal: &Healing,
) -> u32 {
    pick_token_with_margin(logits, tokenizer, first, heal).0
}

/// [`pick_token`], and by how much the chosen token's logit exceeds the best other allowed one
/// (infinite when no other token is allowed).
pub(crate) fn pick_token_with_margin(
    logits: &[f32],
    tokenizer: &ModelTokenizer,
    first: bool,
    heal: &Healing,
) -> (u32, f32) {
    let (generated, body_started) = if first {
        (0, false)
    } else {
        (
            heal.generated.load(Ordering::Relaxed),
            heal.body_started.load(Ordering::Relaxed),
        )
    };
    let constrained = heal.constrains(generated, body_started);
    let mut best = (f32::NEG_INFINITY, None);
    let mut second = f32::NEG_INFINITY;
    for (id, &l) in logits.iter().enumerate() {
        if l <= second || l.is_nan() {
            continue;
        }
        let id = id as u32;
        if constrained
            && !heal.allows(
                tokenizer.token_bytes(id),
                tokenizer.is_special(id),
                generated,
                body_started,
            )
        {
            continue;
        }
        if l > best.0 {
            second = best.0;
            best = (l, Some(id));
        } else {
            second = l;
        }
    }
    (best.1.unwrap_or(0), best.0 - second)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{FakeBackend, Manifest};

    fn load_tokenizer(dir: &Path) -> ModelTokenizer {
        let manifest = Manifest::load(dir).unwrap();
        ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap()
    }

    fn tiny() -> ModelTokenizer {
        load_tokenizer(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../model-assets/tiny-llama"),
        )
    }

    /// The installed default model's tokenizer (a real byte-level BPE, Qwen2.5-Coder's), or
    /// `None` when the test skips (`crate::default_model_for_tests`).
    fn default_tokenizer(test: &str) -> Option<ModelTokenizer> {
        crate::default_model_for_tests(test).map(|dir| load_tokenizer(&dir))
    }

    fn id(tok: &ModelTokenizer, bytes: &str) -> Option<u32> {
        (0..tok.vocab_size() as u32)
            .find(|&i| tok.token_bytes(i) == bytes.as_bytes() && !tok.is_special(i))
    }

    /// Decodes greedily with a scripted "model": given the bytes generated so far, it ranks its
    /// preferred tokens first (in order; those not in the vocabulary are left out) and all others
    /// far below. Returns the generated text.
    fn decode(
        tok: &ModelTokenizer,
        req: &GenerateRequest<'_>,
        model: impl Fn(&[u8]) -> Vec<&'static str>,
    ) -> String {
        let (mut tokens, mut bytes) = (Vec::new(), Vec::new());
        while tokens.len() < req.max_new_tokens {
            let mut logits = vec![-1e6f32; tok.vocab_size()];
            for (rank, p) in model(&bytes).iter().enumerate() {
                if let Some(id) = id(tok, p) {
                    logits[id as usize] = 100.0 - rank as f32;
                }
            }
            logits[tok.eos() as usize] = -1e5;
            let next = pick_token(&logits, tok, tokens.is_empty(), &req.first_token_prefix);
            if tok.is_stop(next) || req.push_token(tok, next, &mut tokens, &mut bytes) {
                break;
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn healing_spans_several_tokens() {
        let tok = tiny();
        // Healed "\n    ": the model prefers "\n\n" (it disagrees at the second byte).
        let heal = Healing::new(b"\n    ".to_vec());
        let req = GenerateRequest::new(vec![], 2, heal, None);
        let text = decode(&tok, &req, |_| {
            vec!["\n\n", "\n", "    ", "   ", "  ", " ", " return", "x"]
        });
        assert!(text.starts_with("\n    "), "{text:?}");
        // A token that disagrees with the healed bytes is never chosen, whatever its rank.
        assert!(!text.starts_with("\n\n"), "{text:?}");
    }

    #[test]
    fn a_line_break_may_not_follow_the_healed_indentation() {
        let tok = tiny();
        let req = GenerateRequest::new(
            vec![],
            2,
            Healing::new(b"    ".to_vec()).no_line_break_first(true),
            None,
        );
        // After the indentation the model wants a line break (or spaces, then one).
        let text = decode(&tok, &req, |done| match done.len() {
            0..4 => vec!["\n", "    \n", "    ", "   ", "  ", " "],
            4 => vec!["\n", " \n", "\r\n", "  \n", "r"],
            // Once a byte of substance came, line breaks are free again.
            _ => vec!["\n"],
        });
        assert_eq!(text, "    r\n");
        // Without the ban the line break comes first.
        let req = GenerateRequest::new(vec![], 2, Healing::new(b"    ".to_vec()), None);
        let text = decode(&tok, &req, |done| match done.len() {
            0..4 => vec!["\n", "    \n", "    ", "   ", "  ", " "],
            _ => vec!["\n", "return"],
        });
        assert!(text.starts_with("    \n"), "{text:?}");
    }

    #[test]
    fn healing_tokens_do_not_count_against_the_budget() {
        let heal = b"\n    ".to_vec();
        let plain = GenerateRequest::new(vec![1], 3, Healing::none(), None);
        let healed = GenerateRequest::new(vec![1], 3, Healing::new(heal.clone()), None);
        assert_eq!(plain.max_new_tokens, 3);
        assert_eq!(healed.budget_after_healing(), 3);
        let fake = FakeBackend::new(tiny(), 2048, |_| "x = y + z + w + v".into());
        let out = fake.generate(&plain, &CancelToken::new()).unwrap();
        assert_eq!(out.tokens.len(), 3);
        assert_eq!(out.finish, FinishReason::MaxTokens);
        let out = fake.generate(&healed, &CancelToken::new()).unwrap();
        assert!(out.bytes.starts_with(&heal), "{:?}", out.bytes);
        // After the healed bytes come the three tokens the budget allows.
        let body = String::from_utf8_lossy(&out.bytes[heal.len()..]).into_owned();
        let plain_text = fake.generate(&plain, &CancelToken::new()).unwrap().bytes;
        assert_eq!(body.as_bytes(), plain_text.as_slice(), "{out:?}");
        // The same request again: the first run's progress does not leak into the second.
        let again = fake.generate(&healed, &CancelToken::new()).unwrap();
        assert_eq!(again.bytes, out.bytes);
    }

    #[test]
    fn qwen_multi_token_healing_regenerates_the_indentation_naturally() {
        let Some(tok) =
            default_tokenizer("qwen_multi_token_healing_regenerates_the_indentation_naturally")
        else {
            return;
        };
        // "    y = 1\n    " ends in the tokens "\n" + "    " (the second one never occurs before
        // code in training); the line's natural tokens are "   " + " return". Healed, the model
        // can choose them.
        let heal = Healing::new(b"\n    ".to_vec()).no_line_break_first(true);
        let req = GenerateRequest::new(vec![], 2, heal, None);
        let text = decode(&tok, &req, |done| match done.len() {
            0 => vec!["\n\n", "    \n", "\n"],
            1..4 => vec!["    \n", "   ", "    "],
            4 => vec!["    \n", " \n", " return"],
            _ => vec![" x", "\n"],
        });
        assert_eq!(text, "\n    return x");
    }
}
