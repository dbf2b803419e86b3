//! The remote backend: an OpenAI-compatible `/v1/completions` server (vLLM, TGI, llama.cpp's
//! server, a hosted API) runs the model, so `moat eval` can compare moat's own model with anything
//! that speaks that protocol through the very same pipeline.
//!
//! Owns: turning a [`GenerateRequest`] into one HTTP request and the reply into a [`Generation`].
//! Must not: keep state between requests (the server owns its caches) or guess model details —
//! the tokenizer and FIM template still come from the manifest, which has `[remote]` instead of
//! (or besides) `[onnx]`.
//!
//! HTTP is `ureq`: small, synchronous (the [`Backend`] trait is blocking anyway, so no async
//! runtime is dragged into the model crate), with rustls for `https://` hosted APIs.
//!
//! How the request is made:
//! - `prompt` is the FIM prompt decoded to text, special tokens written as their text; the server
//!   tokenizes it again. Token healing cannot be enforced remotely, so the healed bytes are put
//!   back at the end of the prompt and prepended to the reply (the pipeline strips them again).
//! - `temperature` 0, `max_tokens` from the request, `stop` = the manifest's stop tokens.
//! - The pipeline's stop check runs on the reply, token by token through the local tokenizer,
//!   so a single-line suggestion ends at the line end exactly as with the local backend;
//!   `tokens` are the local tokenizer's ids of the kept text (the server's own count may differ).
//! - Cancellation is checked before and after the request (a request in flight is not aborted;
//!   its reply is dropped). Without streaming, time to first token equals the total time.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::manifest::RemoteSection;
use crate::{
    Backend, CancelToken, FinishReason, GenerateRequest, Generation, Manifest, ModelError,
    ModelTokenizer,
};

/// Most `stop` strings sent with a request (OpenAI's completions API refuses more).
const MAX_STOP_STRINGS: usize = 4;

/// Environment variable: `1` allows plain `http://` to a host that is not this machine (the
/// prompt — the user's code — and the API key would cross the network unencrypted).
pub const ALLOW_INSECURE_HTTP_ENV: &str = "MOAT_REMOTE_ALLOW_HTTP";

/// Whether `host` (as `http::Uri::host` gives it) is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks `[remote] base_url`: `https://` anywhere, `http://` only to this machine unless
/// `allow_insecure_http`; no credentials in the URL (they would be printed with it).
fn check_base_url(base_url: &str, allow_insecure_http: bool) -> Result<(), String> {
    let uri: ureq::http::Uri = base_url
        .parse()
        .map_err(|e| format!("remote.base_url {base_url:?} is not a URL: {e}"))?;
    let host = uri.host().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("remote.base_url {base_url:?} has no host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(
            "remote.base_url holds credentials: put the API key in the environment variable \
             named by remote.api_key_env instead"
                .into(),
        );
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) || allow_insecure_http => Ok(()),
        Some("http") => Err(format!(
            "remote.base_url uses plain http:// to {host}, which is not this machine: the code \
             in every prompt (and the API key) would cross the network unencrypted. Use \
             https://, or set {ALLOW_INSECURE_HTTP_ENV}=1 to allow it"
        )),
        other => Err(format!(
            "remote.base_url {base_url:?}: scheme {:?} is not http or https",
            other.unwrap_or("")
        )),
    }
}

pub struct RemoteBackend {
    manifest: Manifest,
    remote: RemoteSection,
    tokenizer: ModelTokenizer,
    api_key: Option<String>,
    agent: ureq::Agent,
    stop: Vec<String>,
}

impl RemoteBackend {
    /// Loads a manifest with a `[remote]` section; the API key comes from the environment
    /// variable it names (an error if that variable is not set).
    pub fn load(manifest_path: &Path) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        let api_key_env = manifest.remote.as_ref().and_then(|r| r.api_key_env.clone());
        let api_key = match api_key_env.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| {
                ModelError::Runtime(format!(
                    "remote.api_key_env names {var}, but the environment variable {var} is not set"
                ))
            })?),
        };
        let tokenizer = ModelTokenizer::load(&manifest.tokenizer_path(), &manifest)?;
        let allow_http = std::env::var(ALLOW_INSECURE_HTTP_ENV).is_ok_and(|v| v.trim() == "1");
        Self::with_policy(manifest, tokenizer, api_key, allow_http)
    }

    /// A backend for `manifest`'s `[remote]` server with an explicit API key; plain `http://`
    /// only to this machine.
    pub fn new(
        manifest: Manifest,
        tokenizer: ModelTokenizer,
        api_key: Option<String>,
    ) -> Result<Self, ModelError> {
        Self::with_policy(manifest, tokenizer, api_key, false)
    }

    /// [`RemoteBackend::new`], with plain `http://` to other hosts allowed or not.
    pub fn with_policy(
        manifest: Manifest,
        tokenizer: ModelTokenizer,
        api_key: Option<String>,
        allow_insecure_http: bool,
    ) -> Result<Self, ModelError> {
        let remote = manifest
            .remote
            .clone()
            .ok_or_else(|| ModelError::Manifest {
                path: manifest.dir.join("model.toml"),
                message: "no [remote] section: this manifest does not name a server".into(),
            })?;
        check_base_url(&remote.base_url, allow_insecure_http).map_err(|message| {
            ModelError::Manifest {
                path: manifest.dir.join("model.toml"),
                message,
            }
        })?;
        let api_key = api_key.filter(|k| !k.is_empty());
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(remote.timeout_secs.max(1))))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut stop = vec![manifest.tokens.eos.clone()];
        for s in &manifest.tokens.stop {
            if !stop.contains(s) {
                stop.push(s.clone());
            }
        }
        Ok(Self {
            manifest,
            remote,
            tokenizer,
            api_key,
            agent,
            stop,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn url(&self) -> String {
        format!(
            "{}/v1/completions",
            self.remote.base_url.trim_end_matches('/')
        )
    }

    /// `text` with the API key blanked out: a server may echo request headers in an error
    /// reply, and errors reach the log and the editor.
    fn scrub(&self, text: String) -> String {
        match &self.api_key {
            Some(key) if text.contains(key.as_str()) => text.replace(key.as_str(), "[api key]"),
            _ => text,
        }
    }

    fn post(&self, body: &Value) -> Result<Value, ModelError> {
        self.post_unscrubbed(body).map_err(|e| match e {
            ModelError::Runtime(message) => ModelError::Runtime(self.scrub(message)),
            other => other,
        })
    }

    fn post_unscrubbed(&self, body: &Value) -> Result<Value, ModelError> {
        let url = self.url();
        let mut request = self.agent.post(&url);
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request
            .send_json(body)
            .map_err(|e| ModelError::Runtime(format!("remote {url}: {e}")))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| ModelError::Runtime(format!("remote {url}: reading the reply: {e}")))?;
        if !status.is_success() {
            let mut excerpt: String = text.chars().take(300).collect();
            if excerpt.len() < text.len() {
                excerpt.push('…');
            }
            return Err(ModelError::Runtime(format!(
                "remote {url}: HTTP {status}: {excerpt}"
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| ModelError::Runtime(format!("remote {url}: reply is not JSON: {e}")))
    }
}

impl Backend for RemoteBackend {
    fn describe(&self) -> String {
        format!(
            "{} (remote {} at {})",
            self.manifest.model.name, self.remote.model, self.remote.base_url
        )
    }

    fn tokenizer(&self) -> &ModelTokenizer {
        &self.tokenizer
    }

    fn context_length(&self) -> usize {
        self.manifest.model.context_length
    }

    fn generate(
        &self,
        req: &GenerateRequest<'_>,
        cancel: &CancelToken,
    ) -> Result<Generation, ModelError> {
        let start = Instant::now();
        req.check_fits(self.context_length())?;
        if cancel.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        let mut prompt = self.tokenizer.decode_bytes(&req.prompt);
        prompt.extend_from_slice(&req.first_token_prefix);
        let body = json!({
            "model": self.remote.model,
            "prompt": String::from_utf8_lossy(&prompt),
            // The healed bytes are in the prompt: the server generates only what follows them.
            "max_tokens": req.budget_after_healing(),
            "temperature": 0,
            // OpenAI's API takes at most 4 stop strings; the rest are caught by the stop-token
            // check on the reply.
            "stop": &self.stop[..self.stop.len().min(MAX_STOP_STRINGS)],
        });
        let reply = self.post(&body)?;
        if cancel.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        let choice = reply.get("choices").and_then(|c| c.get(0)).ok_or_else(|| {
            ModelError::Runtime(format!("remote {}: reply has no choices[0]", self.url()))
        })?;
        let text = choice.get("text").and_then(Value::as_str).ok_or_else(|| {
            ModelError::Runtime(format!(
                "remote {}: reply has no choices[0].text",
                self.url()
            ))
        })?;
        let server_finish = choice.get("finish_reason").and_then(Value::as_str);

        // Replay the reply through the local tokenizer so the stop check sees what it would see
        // with a local backend. The healed bytes are the reply's start, as if generated.
        let mut full = req.first_token_prefix.to_vec();
        full.extend_from_slice(text.as_bytes());
        let planned = self.tokenizer.encode(&String::from_utf8_lossy(&full));
        let mut tokens = Vec::new();
        let mut bytes = Vec::new();
        let mut finish = match server_finish {
            Some("length") => FinishReason::MaxTokens,
            _ => FinishReason::StopToken,
        };
        for id in planned {
            // Stop tokens beyond the ones sent as `stop` strings end the reply here.
            if self.tokenizer.is_stop(id) {
                finish = FinishReason::StopToken;
                break;
            }
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::path::PathBuf;
    use std::sync::mpsc;

    use super::*;
    use crate::Healing;

    /// One request as the canned server saw it.
    struct Seen {
        request_line: String,
        headers: Vec<String>,
        body: Value,
    }

    /// Serves `replies` (status, body) to consecutive connections on 127.0.0.1; returns the base
    /// URL and a channel with what each request carried.
    fn canned_server(replies: Vec<(u16, String)>) -> (String, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for (status, reply) in replies {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut headers = Vec::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end().to_string();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    headers.push(line);
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .unwrap();
                let _ = tx.send(Seen {
                    request_line,
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
            }
        });
        (base, rx)
    }

    fn tiny_llama() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../model-assets/tiny-llama")
    }

    /// A manifest folder for the tiny model's tokenizer with `[remote]` pointing at `base`.
    fn remote_manifest(base: &str, extra: &str) -> PathBuf {
        let src = std::fs::read_to_string(tiny_llama().join("model.toml")).unwrap();
        let head = &src[..src.find("[onnx]").unwrap()];
        let head = head.replace("onnx = \"model.onnx\"\n", "").replace(
            "tokenizer = \"tokenizer.json\"",
            &format!(
                "tokenizer = {:?}",
                tiny_llama().join("tokenizer.json").display().to_string()
            ),
        );
        let dir = std::env::temp_dir().join(format!(
            "moat-remote-test-{}-{}",
            std::process::id(),
            base.rsplit(':').next().unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("model.toml"),
            format!("{head}[remote]\nbase_url = \"{base}/\"\nmodel = \"tiny\"\n{extra}"),
        )
        .unwrap();
        dir
    }

    fn backend(base: &str, key: Option<&str>) -> RemoteBackend {
        let manifest = Manifest::load(&remote_manifest(base, "")).unwrap();
        let tokenizer = ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap();
        RemoteBackend::new(manifest, tokenizer, key.map(str::to_string)).unwrap()
    }

    #[test]
    fn sends_the_fim_prompt_and_applies_the_stop_check() {
        let reply = json!({"choices": [{"text": "rn a + b\nprint(1)", "finish_reason": "stop"}]});
        let (base, seen) = canned_server(vec![(200, reply.to_string())]);
        let remote = backend(&base, Some("sk-test"));
        let tok = remote.tokenizer();
        let prompt = tok.fim_prompt(&[], &tok.encode("def f(a, b):\n    "), &tok.encode("\n"));
        let stop = |b: &[u8]| b.iter().position(|&c| c == b'\n');
        // 16 tokens after the healed bytes: the server, which is given them in the prompt, is
        // asked for 16.
        let req = GenerateRequest::new(prompt, 16, Healing::new(b"retu".to_vec()), Some(&stop));
        let g = remote.generate(&req, &CancelToken::new()).unwrap();
        assert_eq!(String::from_utf8_lossy(&g.bytes), "return a + b");
        assert_eq!(g.finish, FinishReason::StopCheck);
        assert!(!g.tokens.is_empty());

        let seen = seen.recv().unwrap();
        assert!(
            seen.request_line.starts_with("POST /v1/completions "),
            "{}",
            seen.request_line
        );
        assert!(
            seen.headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case("authorization: Bearer sk-test")),
            "{:?}",
            seen.headers
        );
        let body = &seen.body;
        assert_eq!(body["model"], "tiny");
        assert_eq!(body["max_tokens"], 16);
        assert_eq!(body["temperature"], 0);
        assert_eq!(
            body["prompt"],
            "<|fim_prefix|><|fim_suffix|>\n<|fim_middle|>def f(a, b):\n    retu"
        );
        assert_eq!(body["stop"], json!(["<|endoftext|>", "<|file_sep|>"]));
    }

    #[test]
    fn server_errors_and_bad_replies_are_clear() {
        let (base, _seen) = canned_server(vec![
            (500, "{\"error\": \"model not loaded\"}".into()),
            (200, "{\"nope\": 1}".into()),
            (200, "not json".into()),
        ]);
        let remote = backend(&base, None);
        let req = GenerateRequest {
            prompt: remote.tokenizer().encode("x = 1"),
            max_new_tokens: 4,
            first_token_prefix: Healing::none(),
            stop: None,
        };
        let cancel = CancelToken::new();
        let e = remote.generate(&req, &cancel).unwrap_err().to_string();
        assert!(
            e.contains("HTTP 500") && e.contains("model not loaded"),
            "{e}"
        );
        let e = remote.generate(&req, &cancel).unwrap_err().to_string();
        assert!(e.contains("no choices[0]"), "{e}");
        let e = remote.generate(&req, &cancel).unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
    }

    #[test]
    fn cancelled_before_the_request_never_connects() {
        // Nothing listens on this server after the listener is dropped: a request would fail
        // with a connection error, not `Cancelled`.
        let base = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let remote = backend(&base, None);
        let cancel = CancelToken::new();
        cancel.cancel();
        let req = GenerateRequest {
            prompt: remote.tokenizer().encode("x"),
            max_new_tokens: 4,
            first_token_prefix: Healing::none(),
            stop: None,
        };
        assert!(matches!(
            remote.generate(&req, &cancel),
            Err(ModelError::Cancelled)
        ));
        let e = remote
            .generate(&req, &CancelToken::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("remote http://127.0.0.1:"), "{e}");
    }

    #[test]
    fn missing_api_key_variable_is_a_clear_error() {
        let dir = remote_manifest(
            "http://127.0.0.1:9",
            "api_key_env = \"MOAT_TEST_SURELY_UNSET_KEY\"\n",
        );
        let e = RemoteBackend::load(&dir).err().unwrap().to_string();
        assert!(e.contains("MOAT_TEST_SURELY_UNSET_KEY is not set"), "{e}");
    }

    #[test]
    fn plain_http_only_to_this_machine_unless_allowed() {
        for ok in [
            "https://api.example.com",
            "https://api.example.com:8443/",
            "http://127.0.0.1:8080",
            "http://localhost:8000/",
            "http://[::1]:9000",
            "http://127.3.4.5",
        ] {
            assert_eq!(check_base_url(ok, false), Ok(()), "{ok}");
        }
        for refused in [
            "http://api.example.com",
            "http://10.0.0.7:8000",
            "http://192.168.1.2",
            "http://localhost.evil.com",
            "http://[fe80::1]:80",
        ] {
            let e = check_base_url(refused, false).unwrap_err();
            assert!(e.contains(ALLOW_INSECURE_HTTP_ENV), "{refused}: {e}");
            assert_eq!(check_base_url(refused, true), Ok(()), "{refused}");
        }
        for bad in [
            "ftp://host",
            "file:///etc/passwd",
            "not a url",
            "/v1/completions",
        ] {
            assert!(check_base_url(bad, true).is_err(), "{bad}");
        }
        let e = check_base_url("https://user:sk-secret@api.example.com", true).unwrap_err();
        assert!(!e.contains("sk-secret"), "{e}");
    }

    #[test]
    fn a_manifest_with_plain_http_to_another_host_does_not_load() {
        let manifest = Manifest::load(&remote_manifest("http://203.0.113.9:8000", "")).unwrap();
        let tokenizer = ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap();
        let e = RemoteBackend::new(manifest.clone(), tokenizer, None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("plain http://"), "{e}");
        let tokenizer = ModelTokenizer::load(&manifest.tokenizer_path(), &manifest).unwrap();
        assert!(RemoteBackend::with_policy(manifest, tokenizer, None, true).is_ok());
    }

    #[test]
    fn the_api_key_never_appears_in_errors_or_descriptions() {
        const KEY: &str = "sk-live-0123456789abcdef";
        // A server that echoes the request's headers back in its error reply.
        let (base, seen) = canned_server(vec![(
            401,
            format!("{{\"error\": \"bad key Bearer {KEY}\"}}"),
        )]);
        let remote = backend(&base, Some(KEY));
        assert!(!remote.describe().contains(KEY));
        let req = GenerateRequest {
            prompt: remote.tokenizer().encode("x = 1"),
            max_new_tokens: 4,
            first_token_prefix: Healing::none(),
            stop: None,
        };
        let e = remote
            .generate(&req, &CancelToken::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP 401") && e.contains("[api key]"), "{e}");
        assert!(!e.contains(KEY), "{e}");
        // It was sent, as the Authorization header only.
        let seen = seen.recv().unwrap();
        assert!(seen.headers.iter().any(|h| h.ends_with(KEY)));
        assert!(!seen.body.to_string().contains(KEY));
    }
}
