//! Framing checks in front of tower-lsp-server. Its reader stops at the first frame it cannot
//! decode (a decoder error ends tokio-util's `FramedRead` stream, and tower-lsp-server's read
//! loop ends with it), so one malformed message (bad JSON, invalid UTF-8, a garbled header) would
//! end the whole server. Frames are checked here first: only well-formed JSON-RPC messages are
//! passed on; the rest are logged and dropped, and the server keeps serving.

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

/// Copies `input` to `output`, passing on only well-formed messages (re-framed with just a
/// `Content-Length` header). Ends at the end of `input` (closing `output`) or when `output` is
/// closed.
pub(crate) async fn forward_valid_frames<R, W>(mut input: R, mut output: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut deframer = Deframer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(next) = deframer.next() {
            match next {
                Ok(body) => {
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
        forward_valid_frames(&input[..], &mut output).await;
        assert_eq!(output, frame(GOOD));
    }
}
