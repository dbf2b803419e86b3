//! Prompt-lookup drafting for speculative decoding without a second model: code repeats itself
//! (the document, its neighbours and the retrieved snippets are all in the prompt), so the tokens
//! that followed the latest earlier occurrence of the last few tokens are a good guess of what
//! comes next. The guess is only a draft: the backend verifies it in one forward pass and keeps
//! exactly the tokens plain greedy decoding would have chosen.

use std::sync::atomic::{AtomicU64, Ordering};

/// Longest n-gram looked up (the last `MAX_NGRAM` tokens, then fewer).
pub const MAX_NGRAM: usize = 3;
/// Shortest n-gram looked up: a single token repeats too often to predict much.
pub const MIN_NGRAM: usize = 2;
/// Most draft tokens verified in one step.
pub const MAX_DRAFT: usize = 6;
/// A row of a verification run whose greedy choice leads the runner-up by less than this many
/// logits is recomputed by a one-token step before it is trusted. A batched run and a one-token
/// step round differently: ONNX Runtime's int4 MatMulNBits with `accuracy_level=4` takes another
/// kernel path for one row than for several; measured on Qwen2.5-Coder-0.5B int4, the logits of a
/// position differ by up to 0.4–0.6 between the two, enough to flip a near tie. Twice that
/// bounds the change of a margin.
pub const VERIFY_MARGIN: f32 = 1.25;
/// Draft tokens allowed at the start of a generation (see [`DraftBudget`]).
pub const START_DRAFT: usize = 3;

/// How many tokens the next draft may have. A verifying pass costs more the more tokens it feeds
/// (each one also gets a row of the LM head), so the length follows the acceptance: one more
/// after a draft accepted whole, one more than the accepted part after a rejection.
#[derive(Debug, Clone, Copy)]
pub struct DraftBudget(usize);

impl Default for DraftBudget {
    fn default() -> Self {
        Self(START_DRAFT)
    }
}

impl DraftBudget {
    pub fn len(self) -> usize {
        self.0
    }

    /// A draft was accepted whole.
    pub fn accepted_all(&mut self) {
        self.0 = (self.0 + 1).min(MAX_DRAFT);
    }

    /// A draft was rejected after its first `accepted` tokens.
    pub fn rejected_after(&mut self, accepted: usize) {
        self.0 = (accepted + 1).clamp(1, MAX_DRAFT);
    }
}

/// How far back the lookup searches (the prompt is at most the context; this bounds the scan).
const SEARCH_WINDOW: usize = 4096;

/// Up to `max` tokens that followed the most recent earlier occurrence of the longest suffix of
/// `history` (of [`MAX_NGRAM`] down to [`MIN_NGRAM`] tokens) found earlier in it; empty when none.
pub fn draft(history: &[u32], max: usize) -> Vec<u32> {
    let len = history.len();
    if max == 0 {
        return Vec::new();
    }
    let floor = len.saturating_sub(SEARCH_WINDOW);
    for n in (MIN_NGRAM..=MAX_NGRAM).rev() {
        if len <= n {
            continue;
        }
        let pattern = &history[len - n..];
        // Latest start `i` with `history[i..i + n] == pattern` and at least one token after it
        // (`i + n < len`, which also excludes the suffix itself).
        let found = (floor..len - n)
            .rev()
            .find(|&i| &history[i..i + n] == pattern);
        if let Some(i) = found {
            let from = i + n;
            let to = (from + max).min(len);
            return history[from..to].to_vec();
        }
    }
    Vec::new()
}

/// Counters over the life of a backend (all requests together).
#[derive(Debug, Default)]
pub struct SpeculationCounters {
    pub(crate) model_steps: AtomicU64,
    pub(crate) verify_steps: AtomicU64,
    pub(crate) drafted: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) recomputed: AtomicU64,
    pub(crate) generated: AtomicU64,
}

/// A snapshot of [`SpeculationCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpeculationStats {
    /// Decode forward passes (each feeds one token, plus its draft when there is one).
    pub model_steps: u64,
    /// Of those, passes that verified a draft.
    pub verify_steps: u64,
    /// Draft tokens fed.
    pub drafted: u64,
    /// Draft tokens that equalled the greedy choice (each saved a forward pass).
    pub accepted: u64,
    /// Rows of verification runs recomputed by a one-token step (near ties, see
    /// [`VERIFY_MARGIN`]); each is a forward pass more.
    pub recomputed: u64,
    /// Tokens generated (picked), all requests together.
    pub generated: u64,
}

/// Counts of two runs together (e.g. rounds of a benchmark).
impl std::ops::Add for SpeculationStats {
    type Output = Self;
    fn add(self, b: Self) -> Self {
        Self {
            model_steps: self.model_steps + b.model_steps,
            verify_steps: self.verify_steps + b.verify_steps,
            drafted: self.drafted + b.drafted,
            accepted: self.accepted + b.accepted,
            recomputed: self.recomputed + b.recomputed,
            generated: self.generated + b.generated,
        }
    }
}

impl SpeculationStats {
    /// Accepted draft tokens per verification step.
    pub fn accepted_per_verify(&self) -> f64 {
        self.accepted as f64 / self.verify_steps.max(1) as f64
    }

    /// Tokens decoded per decode forward pass: each pass but a recomputation decodes one, plus
    /// the accepted draft tokens (1.0 without speculation).
    pub fn tokens_per_step(&self) -> f64 {
        (self.model_steps - self.recomputed + self.accepted) as f64 / self.model_steps.max(1) as f64
    }

    /// The change since `before`.
    pub fn since(&self, before: &SpeculationStats) -> SpeculationStats {
        SpeculationStats {
            model_steps: self.model_steps - before.model_steps,
            verify_steps: self.verify_steps - before.verify_steps,
            drafted: self.drafted - before.drafted,
            accepted: self.accepted - before.accepted,
            recomputed: self.recomputed - before.recomputed,
            generated: self.generated - before.generated,
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl SpeculationCounters {
    pub(crate) fn snapshot(&self) -> SpeculationStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SpeculationStats {
            model_steps: get(&self.model_steps),
            verify_steps: get(&self.verify_steps),
            drafted: get(&self.drafted),
            accepted: get(&self.accepted),
            recomputed: get(&self.recomputed),
            generated: get(&self.generated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_suffix_wins_and_its_latest_occurrence() {
        // "1 2 3 9 9" earlier, "2 3 7" later; history ends in "1 2 3".
        let h = [1, 2, 3, 9, 9, 5, 2, 3, 7, 8, 1, 2, 3];
        // The trigram 1 2 3 occurs at 0 (followed by 9 9 5 ...); the bigram's latest occurrence
        // (at 6, followed by 7) loses to the longer match.
        assert_eq!(draft(&h, 3), vec![9, 9, 5]);
        // Only a bigram matches: its latest earlier occurrence.
        let h = [4, 5, 6, 1, 5, 6, 2, 9, 5, 6];
        assert_eq!(draft(&h, 2), vec![2, 9]);
        // The draft stops at the end of the history.
        let h = [7, 8, 9, 7, 8];
        assert_eq!(draft(&h, 5), vec![9, 7, 8]);
    }

    #[test]
    fn the_draft_budget_follows_acceptance() {
        let mut b = DraftBudget::default();
        assert_eq!(b.len(), START_DRAFT);
        b.accepted_all();
        assert_eq!(b.len(), START_DRAFT + 1);
        for _ in 0..10 {
            b.accepted_all();
        }
        assert_eq!(b.len(), MAX_DRAFT);
        b.rejected_after(0);
        assert_eq!(b.len(), 1);
        b.rejected_after(2);
        assert_eq!(b.len(), 3);
        b.rejected_after(100);
        assert_eq!(b.len(), MAX_DRAFT);
    }

    #[test]
    fn no_match_no_draft() {
        assert!(draft(&[1, 2, 3, 4], 4).is_empty());
        assert!(draft(&[], 4).is_empty());
        assert!(draft(&[1, 1], 0).is_empty());
        // A single repeated token is below the shortest n-gram.
        assert!(draft(&[5, 1, 2, 5], 4).is_empty());
    }
}
