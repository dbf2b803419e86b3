"""FIM sample construction and token-shard preparation (used by pretrain.py / finetune.py).

A document (or a chunk of a long one) becomes one sample:
  plain (1 - fim_rate):  [<|file_sep|>]path\\n + content + <|endoftext|>   (path header: 50%)
  SPM   (fim_rate * spm_rate):
        <|fim_prefix|><|fim_suffix|>{suffix}<|fim_middle|>{prefix}{middle}<|endoftext|>
  PSM   (the rest):
        <|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>{middle}<|endoftext|>
The SPM form is exactly the server's default `spm` template followed by the middle. Every text
piece is tokenized on its own (prefix and middle separately), as the server tokenizes the
prefix up to the cursor on its own: the model learns to continue a prefix that ends inside
a whitespace run (e.g. after a line's indentation). Half of the FIM split points are
line-aligned (the middle starts after a line's indentation and ends at the end of that line
or a few lines later), the editor's next-line case; the other half are uniform random.
Some FIM samples get repository context in front, as the server sends it:
`<|file_sep|>other/path\\n{first lines of another file of the same package}\\n`.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np

from common import EOS, FILE_SEP, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, log, read_shards

INDENT_RE = re.compile(r"[ \t]*")


def chunk_document(text: str, max_chars: int) -> list[str]:
    """Split a long file at line boundaries into pieces of at most ~max_chars."""
    if len(text) <= max_chars:
        return [text]
    out, cur, n = [], [], 0
    for line in text.splitlines(keepends=True):
        if n + len(line) > max_chars and cur:
            out.append("".join(cur))
            cur, n = [], 0
        cur.append(line[:max_chars])
        n += len(cur[-1])
    if cur:
        out.append("".join(cur))
    return out


def fim_split(text: str, rng: random.Random) -> tuple[str, str, str]:
    """(prefix, middle, suffix) of text; line-aligned half of the time."""
    if rng.random() < 0.5:
        starts = [0] + [m.end() for m in re.finditer("\n", text)]
        lines = [(s, text.find("\n", s)) for s in starts]
        lines = [(s, e if e >= 0 else len(text)) for s, e in lines]
        cand = [i for i, (s, e) in enumerate(lines) if text[s:e].strip()]
        if cand:
            i = rng.choice(cand)
            s, e = lines[i]
            s += len(INDENT_RE.match(text, s).group(0))
            k = min(len(lines) - 1, i + min(int(rng.expovariate(1.0)), 4))
            e = lines[k][1]
            if e < s:
                e = lines[i][1]
            return text[:s], text[s:e], text[e:]
    a, b = sorted(rng.randrange(len(text) + 1) for _ in range(2))
    return text[:a], text[a:b], text[b:]


class SampleBuilder:
    def __init__(self, tok, fim_rate: float, spm_rate: float, ctx_rate: float, seed: int):
        self.tok = tok
        self.fim_rate, self.spm_rate, self.ctx_rate = fim_rate, spm_rate, ctx_rate
        self.rng = random.Random(seed)
        self.ids = {s: tok.token_to_id(s) for s in [EOS, FILE_SEP, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX]}
        self.counts = {"plain": 0, "spm": 0, "psm": 0, "repo_context": 0}

    def pieces(self, rec: dict, chunk: str, prev: dict | None) -> list:
        """A sample as a list of str (text to encode) and int (special token id)."""
        I, rng = self.ids, self.rng
        if rng.random() >= self.fim_rate or len(chunk) < 20:
            self.counts["plain"] += 1
            if rng.random() < 0.5:
                return [I[FILE_SEP], rec["path"] + "\n", chunk, I[EOS]]
            return [chunk, I[EOS]]
        pre, mid, suf = fim_split(chunk, rng)
        ctx: list = []
        if prev is not None and rng.random() < self.ctx_rate:
            snippet = "".join(prev["content"].splitlines(keepends=True)[:30]).rstrip()
            ctx = [I[FILE_SEP], f"{prev['path']}\n{snippet}\n"]
            self.counts["repo_context"] += 1
        if rng.random() < self.spm_rate:
            self.counts["spm"] += 1
            return ctx + [I[FIM_PREFIX], I[FIM_SUFFIX], suf, I[FIM_MIDDLE], pre, mid, I[EOS]]
        self.counts["psm"] += 1
        return ctx + [I[FIM_PREFIX], pre, I[FIM_SUFFIX], suf, I[FIM_MIDDLE], mid, I[EOS]]

    def encode(self, samples: list[list]) -> np.ndarray:
        texts = [p for s in samples for p in s if isinstance(p, str) and p]
        enc = iter(self.tok.encode_batch(texts, add_special_tokens=False)) if texts else iter(())
        out: list[int] = []
        for s in samples:
            for p in s:
                if isinstance(p, int):
                    out.append(p)
                elif p:
                    out.extend(next(enc).ids)
        return np.asarray(out, dtype=np.uint32)


def prepare_tokens(tok, shards: list[Path], out_dir: Path, prefix: str, *, fim_rate: float,
                   spm_rate: float, ctx_rate: float, seed: int, chunk_chars: int,
                   max_tokens: int = 0, shard_tokens: int = 4_000_000) -> dict:
    """Turn curated shards into compressed token shards <out_dir>/<prefix>-NNNNN.npz."""
    out_dir.mkdir(parents=True, exist_ok=True)
    builder = SampleBuilder(tok, fim_rate, spm_rate, ctx_rate, seed)
    dtype = np.uint16 if tok.get_vocab_size() <= 65535 else np.uint32
    buf: list[np.ndarray] = []
    n_buf = n_total = n_shard = 0
    batch: list[list] = []
    prev = None
    n_docs = 0

    def flush_batch():
        nonlocal n_buf, n_total
        if batch:
            arr = builder.encode(batch)
            buf.append(arr)
            n_buf += len(arr)
            n_total += len(arr)
            batch.clear()

    def write_shard():
        nonlocal n_buf, n_shard, buf
        if n_buf == 0:
            return
        arr = np.concatenate(buf).astype(dtype)
        tmp = out_dir / f"{prefix}-{n_shard:05d}.tmp.npz"
        np.savez_compressed(tmp, tokens=arr)
        tmp.replace(out_dir / f"{prefix}-{n_shard:05d}.npz")
        n_shard += 1
        buf, n_buf = [], 0

    for rec in read_shards(shards):
        n_docs += 1
        same_pkg = prev if prev is not None and prev["package"] == rec["package"] else None
        for chunk in chunk_document(rec["content"], chunk_chars):
            batch.append(builder.pieces(rec, chunk, same_pkg))
        prev = rec
        if len(batch) >= 256:
            flush_batch()
            if n_buf >= shard_tokens:
                write_shard()
        if max_tokens and n_total >= max_tokens:
            break
    flush_batch()
    write_shard()
    stats = {"documents": n_docs, "tokens": int(n_total), "shards": n_shard} | builder.counts
    log(f"prepare: {prefix}: {n_docs} docs -> {n_total:,} tokens in {n_shard} shards {builder.counts}")
    return stats


def load_tokens(data_dir: Path, prefix: str) -> np.ndarray:
    parts = [np.load(p)["tokens"] for p in sorted(data_dir.glob(f"{prefix}-[0-9]*.npz"))]
    if not parts:
        return np.zeros(0, dtype=np.uint16)
    return np.concatenate(parts)
