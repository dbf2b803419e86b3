//! Framing checks in front of tower-lsp-server. Its reader stops at the first frame it cannot
//! decode (a decoder error ends tokio-util's `FramedRead` stream, and tower-lsp-server's read
//! loop ends with it), so one malformed message (bad JSON, invalid UTF-8, a garbled header) would
//! end the whole server. Frames are checked here first: only well-formed JSON-RPC messages are
//! passed on; the rest are logged and dropped, and the server keeps serving.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tower_lsp_server::jsonrpc::{Request, Response};

/// A header block longer than this without its blank line is garbage.
const MAX_HEADER: usize = 8 * 1024;
/// A `Content-Length` above this is treated as garbage rather than waited for.
const MAX_BODY: usize = 512 * 1024 * 1024;

/// Splits a byte stream into `Content-Length` framed messages and checks each one.
#[derive(Default)]
pub(crate) struct Deframer {
    buf: Vec<u8>,
    content_len: Option<usize>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(header: &[u8]) -> Result<usize, String> {
    let header = std::str::from_utf8(header).map_err(|_| "a header is not UTF-8".to_string())?;
    let mut length = None;
    for line in header.split("\r\n").filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("bad Content-Length {:?}", value.trim()))?;
            if n > MAX_BODY {
                return Err(format!("Content-Length {n} is too large"));
            }
            length = Some(n);
        }
    }
    length.ok_or_else(|| "a header without Content-Length".to_string())
}

/// Ok when `body` is a message tower-lsp-server can decode (a request, notification or response).
fn check(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    if serde_json::from_str::<Response>(text).is_ok() {
        return Ok(());
    }
    serde_json::from_str::<Request>(text)
        .map(|_| ())
        .map_err(|e| format!("not a JSON-RPC message: {e}"))
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next checked message body: `Some(Ok(body))` to pass on, `Some(Err(why))` for something
    /// dropped, `None` when more input is needed.
    pub fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        if let Some(len) = self.content_len {
            if self.buf.len() < len {
                return None;
            }
            let body: Vec<u8> = self.buf.drain(..len).collect();
            self.content_len = None;
            return Some(check(&body).map(|()| body));
        }
        let Some(end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() <= MAX_HEADER {
                return None;
            }
            // No header end in sight: skip to a later "Content-Length", else drop all but a tail
            // that could be the start of one.
            let skip =
                find(&self.buf[1..], b"Content-Length").map_or(self.buf.len() - 16, |i| i + 1);
            self.buf.drain(..skip);
            return Some(Err(format!(
                "dropped {skip} bytes without a message header"
            )));
        };
        match content_length(&self.buf[..end]) {
            Ok(len) => {
                self.buf.drain(..end + 4);
                self.content_len = Some(len);
                self.next()
            }
            Err(why) => {
                // Resynchronise at a later "Content-Length" inside the block, else drop it.
                let skip = self
                    .buf
                    .get(1..end)
                    .and_then(|block| find(block, b"Content-Length"))
                    .map_or(end + 4, |i| i + 1);
                self.buf.drain(..skip);
                Some(Err(why))
            }
        }
    }
}

fn excerpt(why: &str) -> String {
    let mut s: String = why.chars().take(300).collect();
    if s.len() < why.len() {
        s.push('…');
    }
    s
}

/// The method of a request (a message with an `id`), if `body` is one.
fn request_method(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        method: Option<String>,
        id: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    probe.id.and(probe.method)
}

/// Copies `input` to `output`, passing on only well-formed messages (re-framed with just a
/// `Content-Length` header). Ends at the end of `input` (closing `output`) or when `output` is
/// closed.
///
/// Sets `shutdown_received` when a `shutdown` request (after an `initialize`) passes: an editor
/// that sends `exit` right behind `shutdown` has tower-lsp-server end the pending `shutdown` as
/// cancelled before the server's handler runs, yet by the spec the exit code is 0 because the
/// request was received.
pub(crate) async fn forward_valid_frames<R, W>(
    mut input: R,
    mut output: W,
    shutdown_received: &AtomicBool,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut initialized = false;
    let mut deframer = Deframer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(next) = deframer.next() {
            match next {
                Ok(body) => {
                    if find(&body, b"initialize").is_some() || find(&body, b"shutdown").is_some() {
                        match request_method(&body).as_deref() {
                            Some("initialize") => initialized = true,
                            Some("shutdown") if initialized => {
                                shutdown_received.store(true, Ordering::SeqCst);
                            }
                            _ => {}
                        }
                    }
                    let header = format!("Content-Length: {}\r\n\r\n", body.len());
                    let written = async {
                        output.write_all(header.as_bytes()).await?;
                        output.write_all(&body).await?;
                        output.flush().await
                    };
                    if written.await.is_err() {
                        return;
                    }
                }
                Err(why) => tracing::warn!("ignored a malformed message: {}", excerpt(&why)),
            }
        }
        match input.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => deframer.push(&chunk[..n]),
        }
    }
    let _ = output.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        f.extend_from_slice(body);
        f
    }

    /// Feeds `input` in pieces of `step` bytes: framing must not depend on how reads split.
    fn run(input: &[u8], step: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut d = Deframer::default();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            d.push(piece);
            while let Some(next) = d.next() {
                out.push(next);
            }
        }
        out
    }

    const GOOD: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;

    #[test]
    fn passes_good_frames_and_drops_bad_ones() {
        let mut input = frame(GOOD);
        input.extend(frame(b"{not json"));
        input.extend(frame(
            b"{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":\"\xff\"}",
        ));
        input.extend(frame(br#"{"hello":"world"}"#));
        input.extend(b"garbage line\r\n\r\n");
        input.extend(b"Content-Length: nope\r\n\r\n");
        input.extend(b"Content-Type: application/vscode-jsonrpc; charset=latin1\r\n");
        input.extend(frame(GOOD));
        input.extend(frame(br#"{"jsonrpc":"2.0","id":1,"result":null}"#));
        let out = run(&input, 1);
        let good: Vec<_> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(good.len(), 3, "{out:?}");
        assert_eq!(good[0], GOOD);
        assert_eq!(good[1], GOOD);
        assert_eq!(out.iter().filter(|r| r.is_err()).count(), 5, "{out:?}");
    }

    #[test]
    fn blank_lines_before_a_header() {
        let mut input = b"\r\n\r\n".to_vec();
        input.extend(b"\r\n");
        input.extend(frame(GOOD));
        for step in [1, 3, 1000] {
            let out = run(&input, step);
            assert_eq!(out.last(), Some(&Ok(GOOD.to_vec())), "{out:?}");
        }
    }

    #[test]
    fn resynchronises_after_unterminated_garbage() {
        let mut input = vec![b'x'; MAX_HEADER + 100];
        input.extend(frame(GOOD));
        let out = run(&input, 61);
        assert_eq!(out.last(), Some(&Ok(GOOD.to_vec())), "{out:?}");
    }

    #[tokio::test]
    async fn forwards_over_async_io() {
        let mut input = frame(b"[1,2]");
        input.extend(frame(GOOD));
        let mut output = Vec::new();
        let shutdown = AtomicBool::new(false);
        forward_valid_frames(&input[..], &mut output, &shutdown).await;
        assert_eq!(output, frame(GOOD));
        // A shutdown before any initialize does not count.
        assert!(!shutdown.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn notes_a_shutdown_request_after_initialize() {
        let mut input = frame(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#);
        input.extend(frame(br#"{"jsonrpc":"2.0","method":"shutdown"}"#));
        let shutdown = AtomicBool::new(false);
        forward_valid_frames(&input[..], &mut Vec::new(), &shutdown).await;
        assert!(
            !shutdown.load(Ordering::SeqCst),
            "a notification is not the request"
        );
        input.extend(frame(br#"{"jsonrpc":"2.0","result":"shutdown","id":3}"#));
        input.extend(frame(GOOD));
        forward_valid_frames(&input[..], &mut Vec::new(), &shutdown).await;
        assert!(shutdown.load(Ordering::SeqCst));
    }

    /// The committed corpus (`tests/corpus/transport/NAME.N.bin`, N = the messages that must pass)
    /// replays under several read splits.
    #[test]
    fn corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/transport");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus folder") {
            let path = entry.expect("entry").path();
            let input = std::fs::read(&path).expect("corpus file");
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let want: usize = name
                .rsplit('.')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name}: expected NAME.N.bin"));
            for step in [1, 2, 7, 64, 4096, input.len().max(1)] {
                let out = run(&input, step);
                let good = out.iter().filter(|r| r.is_ok()).count();
                assert_eq!(good, want, "{name} read {step} bytes at a time: {out:?}");
            }
            seen += 1;
        }
        assert!(seen > 0, "empty corpus at {}", dir.display());
    }
}

/// Fuzzing the framing (issue 16), on stable Rust with a seeded generator: random byte streams
/// made of header fragments, digits, line breaks, JSON pieces and noise, fed in random read
/// splits, must never panic and must keep the buffer bounded; well-formed messages with garbage
/// between them must all come out, in order, whatever the splits.
///
/// Quick run (CI): `cargo test -p moat-lsp transport::fuzz` (20,000 streams per property).
/// Long run: `MOAT_FUZZ_ITERS=1000000 MOAT_FUZZ_SEED=1 cargo test --release -p moat-lsp
/// transport::fuzz -- --nocapture` (prints the count). A failing stream is printed with its
/// seed; keep it in `tests/corpus/transport/`.
#[cfg(test)]
mod fuzz {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        f.extend_from_slice(body);
        f
    }

    /// xorshift64*: small, seeded, good enough to drive a fuzzer.
    pub(super) struct Rng(u64);

    impl Rng {
        pub(super) fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(super) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub(super) fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    fn iterations() -> u64 {
        std::env::var("MOAT_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000)
    }

    fn seed() -> u64 {
        std::env::var("MOAT_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x5eed)
    }

    const PIECES: &[&[u8]] = &[
        b"Content-Length: ",
        b"content-length:",
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8",
        b"\r\n",
        b"\r\n\r\n",
        b"\n",
        b"\r",
        b":",
        b"0",
        b"17",
        b"99999999999999999999999",
        b"-1",
        b" ",
        b"{",
        b"}",
        b"\"jsonrpc\":\"2.0\"",
        b"\"id\":1",
        b"\"method\":\"initialize\"",
        b"\"params\":{}",
        b",",
        b"\xff",
        b"\xc3",
        b"\xf0\x9f\x98",
        b"\0",
        b"\\ud83d",
    ];

    fn noise(rng: &mut Rng, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.below(max) {
            if rng.below(3) == 0 {
                out.push(rng.next() as u8);
            } else {
                let piece: &[u8] = PIECES[rng.below(PIECES.len())];
                out.extend_from_slice(piece);
            }
        }
        out
    }

    /// Feeds `input` in random splits; checks the buffer bound after every read.
    fn run_random(rng: &mut Rng, input: &[u8]) -> Vec<Result<Vec<u8>, String>> {
        let mut d = Deframer::default();
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let most = if rng.below(4) == 0 { 4096 } else { 32 };
            let n = 1 + rng.below(most);
            let (piece, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            d.push(piece);
            while let Some(next) = d.next() {
                out.push(next);
            }
            // Waiting for a header holds at most MAX_HEADER bytes plus the last read; waiting
            // for a body holds less than the body.
            match d.content_len {
                None => assert!(d.buf.len() <= MAX_HEADER + n, "{}", d.buf.len()),
                Some(len) => assert!(d.buf.len() < len),
            }
        }
        out
    }

    fn json_string(rng: &mut Rng) -> String {
        const CHARS: &[&str] = &["a", "/", "$", "é", "😀", "\\\"", "\\n", "\\u0000", " "];
        (0..rng.below(8)).map(|_| *rng.pick(CHARS)).collect()
    }

    fn json_value(rng: &mut Rng, depth: usize) -> String {
        match rng.below(if depth > 3 { 5 } else { 7 }) {
            0 => "null".into(),
            1 => (rng.next() as i64 >> rng.below(64)).to_string(),
            2 => format!("{}e{}", rng.below(1000), rng.below(300)),
            3 => "true".into(),
            4 => format!("\"{}\"", json_string(rng)),
            5 => format!(
                "[{}]",
                (0..rng.below(4))
                    .map(|_| json_value(rng, depth + 1))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => format!(
                "{{{}}}",
                (0..rng.below(4))
                    .map(|_| format!("\"{}\":{}", json_string(rng), json_value(rng, depth + 1)))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// A well-formed JSON-RPC message: request, notification or response.
    fn message(rng: &mut Rng) -> Vec<u8> {
        let id = match rng.below(3) {
            0 => (rng.next() >> 12).to_string(),
            1 => format!("\"{}\"", json_string(rng)),
            _ => "-7".into(),
        };
        let method = format!(
            "\"{}{}\"",
            rng.pick(&["textDocument/", "$/", "moat/", ""]),
            json_string(rng)
        );
        let body = match rng.below(4) {
            0 => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":{method},"params":{}}}"#,
                json_value(rng, 0)
            ),
            1 => format!(r#"{{"jsonrpc":"2.0","method":{method}}}"#),
            2 => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#,
                json_value(rng, 0)
            ),
            _ => format!(
                r#"{{"id":{id},"jsonrpc":"2.0","error":{{"code":-32601,"message":"{}"}}}}"#,
                json_string(rng)
            ),
        };
        body.into_bytes()
    }

    /// Garbage that cannot form a header: no blank line, no `content-length`.
    fn garbage(rng: &mut Rng) -> Vec<u8> {
        let mut g = noise(rng, 12);
        loop {
            let lower = g.to_ascii_lowercase();
            if let Some(i) = find(&lower, b"content-length") {
                g.remove(i);
            } else if let Some(i) = find(&g, b"\r\n\r\n") {
                g.remove(i);
            } else {
                return g;
            }
        }
    }

    #[test]
    fn random_streams_never_panic() {
        let mut rng = Rng::new(seed());
        let n = iterations();
        for _ in 0..n {
            let mut input = noise(&mut rng, 40);
            if rng.below(2) == 0 {
                input.extend(frame(&message(&mut rng)));
                input.extend(noise(&mut rng, 10));
            }
            if rng.below(50) == 0 {
                input.extend(std::iter::repeat_n(b'x', MAX_HEADER + rng.below(100)));
            }
            run_random(&mut rng, &input);
        }
        eprintln!("transport fuzz: {n} random streams, seed {}", seed());
    }

    #[test]
    fn messages_between_garbage_all_pass_in_order() {
        let mut rng = Rng::new(seed() ^ 0xabcd);
        let n = iterations();
        for i in 0..n {
            let messages: Vec<Vec<u8>> = (0..1 + rng.below(4)).map(|_| message(&mut rng)).collect();
            let mut input = Vec::new();
            for m in &messages {
                if rng.below(2) == 0 {
                    input.extend(garbage(&mut rng));
                }
                input.extend(frame(m));
            }
            let out = run_random(&mut rng, &input);
            let good: Vec<&Vec<u8>> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(
                good,
                messages.iter().collect::<Vec<_>>(),
                "stream {i} (seed {}): {:?}",
                seed(),
                String::from_utf8_lossy(&input)
            );
        }
        eprintln!("transport fuzz: {n} framed streams, seed {}", seed());
    }
}
