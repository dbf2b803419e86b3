//! A deterministic backend for tests of everything above the model: it "generates" the text a
//! script returns for the prompt, token by token, through the real tokenizer, honouring stop
//! checks, max tokens and cancellation like the real backends.

use std::time::{Duration, Instant};

use crate::{
    Backend, CancelToken, FinishReason, GenerateRequest, Generation, ModelError, ModelTokenizer,
};

type Script = Box<dyn Fn(&str) -> String + Send + Sync>;

pub struct FakeBackend {
    tokenizer: ModelTokenizer,
    context_length: usize,
    script: Script,
    /// Pause per generated token, to test cancellation and debounce.
    pub step_delay: Duration,
}

impl FakeBackend {
    /// `script` maps the decoded prompt text to the completion to produce.
    pub fn new(
        tokenizer: ModelTokenizer,
        context_length: usize,
        script: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Self {
        Self {
            tokenizer,
            context_length,
            script: Box::new(script),
            step_delay: Duration::ZERO,
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
        let mut text = req.first_token_prefix.clone();
        text.extend_from_slice((self.script)(&prompt).as_bytes());
        let planned = self.tokenizer.encode(&String::from_utf8_lossy(&text));
        let mut tokens = Vec::new();
        let mut bytes = Vec::new();
        let mut finish = FinishReason::StopToken;
        for id in planned {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            if tokens.len() >= req.max_new_tokens {
                finish = FinishReason::MaxTokens;
                break;
            }
            std::thread::sleep(self.step_delay);
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
