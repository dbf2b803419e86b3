//! A deterministic backend for tests of everything above the model: a scripted "model" that wants
//! to write the text a script returns for the prompt. It decodes like the real backends: each step
//! scores every token of the real tokenizer (the longest token that continues the wanted text
//! scores highest) and picks through the shared [`pick_token`], so token healing and the other
//! decoding constraints apply; stop checks, max tokens and cancellation are honoured alike.
//!
//! When the constraints ban every token that continues the wanted text (a line break where none
//! may come), the next best is a token that continues it after its leading whitespace, as a model
//! would go on with the code; failing that, the end-of-text token when only whitespace is left.

use std::time::{Duration, Instant};

use crate::backend::pick_token;
use crate::{
    Backend, CancelToken, FinishReason, GenerateRequest, Generation, ModelError, ModelTokenizer,
};

type Script = Box<dyn Fn(&str) -> String + Send + Sync>;

pub struct FakeBackend {
    tokenizer: ModelTokenizer,
    context_length: usize,
    script: Script,
    /// Per token id: whether it is special (cached: scoring looks at every token each step).
    special: Vec<bool>,
    /// Pause per generated token, to test cancellation and debounce.
    pub step_delay: Duration,
}

impl FakeBackend {
    /// `script` maps the decoded prompt text to the text to produce after the healed bytes (that
    /// is, after the cursor).
    pub fn new(
        tokenizer: ModelTokenizer,
        context_length: usize,
        script: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Self {
        let special = (0..tokenizer.vocab_size() as u32)
            .map(|id| tokenizer.is_special(id))
            .collect();
        Self {
            tokenizer,
            context_length,
            script: Box::new(script),
            special,
            step_delay: Duration::ZERO,
        }
    }

    /// Scores every token for continuing `rest`, the wanted text not yet generated.
    fn score(&self, rest: &[u8], logits: &mut [f32]) {
        let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let after_ws = &rest[skip..];
        let eos = self.tokenizer.eos();
        for (id, l) in logits.iter_mut().enumerate() {
            let b = self.tokenizer.token_bytes(id as u32);
            *l = if self.special[id] {
                match (id as u32 == eos, rest.is_empty(), after_ws.is_empty()) {
                    (true, true, _) => 1e9,
                    (true, false, true) => -1e5,
                    _ => -1e9,
                }
            } else if b.is_empty() {
                -1e9
            } else if rest.starts_with(b) {
                b.len() as f32
            } else if skip > 0 && after_ws.starts_with(b) {
                b.len() as f32 - 1e4
            } else {
                -1e6
            };
        }
    }
}

impl Backend for FakeBackend {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn tokenizer(&self) -> &ModelTokenizer {
        &self.tokenizer
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError> {
        let start = Instant::now();
        req.check_fits(self.context_length)?;
        let prompt =
            String::from_utf8_lossy(&self.tokenizer.decode_bytes(&req.prompt)).into_owned();
        let heal = &req.first_token_prefix;
        let mut wanted = heal.bytes().to_vec();
        wanted.extend_from_slice((self.script)(&prompt).as_bytes());
        let mut at = 0;
        let mut logits = vec![0f32; self.tokenizer.vocab_size()];
        let mut tokens = Vec::new();
        let mut bytes = Vec::new();
        let mut finish = FinishReason::MaxTokens;
        while tokens.len() < req.max_new_tokens {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            std::thread::sleep(self.step_delay);
            let rest = &wanted[at..];
            self.score(rest, &mut logits);
            let id = pick_token(&logits, &self.tokenizer, tokens.is_empty(), heal);
            if self.tokenizer.is_stop(id) {
                finish = FinishReason::StopToken;
                break;
            }
            let b = self.tokenizer.token_bytes(id);
            let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            at = if rest.starts_with(b) {
                at + b.len()
            } else if rest[skip..].starts_with(b) {
                at + skip + b.len()
            } else {
                wanted.len() // off the script: the model has nothing more to say
            };
            if req.push_token(&self.tokenizer, id, &mut tokens, &mut bytes) {
                finish = FinishReason::StopCheck;
                break;
            }
        }
        Ok(Generation {
            tokens,
            bytes,
            finish,
            reused_tokens: 0,
            computed_tokens: req.prompt.len(),
            time_to_first_token: start.elapsed(),
            total_time: start.elapsed(),
        })
    }
}
