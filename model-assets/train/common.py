"""Shared helpers for the moat training pipeline (model-assets/train/).

Everything here is plain Python + numpy: record shards (gzip JSONL), token shards
(compressed .npz), language detection, the special tokens and the FIM formats the server uses.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"

# Special tokens: ids 0..4 in this order (same as model-assets/tools and the manifest).
EOS = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
FILE_SEP = "<|file_sep|>"
SPECIAL_TOKENS = [EOS, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FILE_SEP]

LANG_BY_EXT = {
    ".py": "python",
    ".rs": "rust",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "typescript",
    ".go": "go",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".ipp": "cpp", ".inl": "cpp",
}
LANGUAGES = ["python", "rust", "javascript", "typescript", "go", "java", "c", "cpp"]


def language_of(path: str) -> str | None:
    p = path.lower()
    if p.endswith(".d.ts"):
        return "typescript"
    return LANG_BY_EXT.get(os.path.splitext(p)[1])


def sha256_text(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()


def stable_hash01(s: str) -> float:
    """Deterministic hash of a string into [0, 1)."""
    h = hashlib.sha256(s.encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def log(*a) -> None:
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


# ----------------------------------------------------------------------------------------
# record shards: gzip JSONL, bounded size
# ----------------------------------------------------------------------------------------

class ShardWriter:
    """Writes records to PREFIX-00000.jsonl.gz, PREFIX-00001.jsonl.gz, ... (<= max_bytes of
    uncompressed JSON each, so compressed shards stay well under 16 MiB)."""

    def __init__(self, out_dir: Path, prefix: str, max_bytes: int = 48 << 20):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.n_shard = 0
        self.cur = None
        self.cur_bytes = 0
        self.count = 0
        self.paths: list[Path] = []

    def _open(self):
        p = self.out_dir / f"{self.prefix}-{self.n_shard:05d}.jsonl.gz.tmp"
        self.cur = gzip.open(p, "wt", encoding="utf-8", compresslevel=6)
        self.cur_path = p
        self.cur_bytes = 0

    def _close(self):
        if self.cur is not None:
            self.cur.close()
            final = self.cur_path.with_suffix("")  # drop .tmp
            os.replace(self.cur_path, final)
            self.paths.append(final)
            self.cur = None
            self.n_shard += 1

    def write(self, rec: dict) -> None:
        if self.cur is None:
            self._open()
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        self.cur.write(line)
        self.cur_bytes += len(line)
        self.count += 1
        if self.cur_bytes >= self.max_bytes:
            self._close()

    def close(self) -> list[Path]:
        self._close()
        return self.paths


def read_shards(paths: Iterable[Path]) -> Iterator[dict]:
    for p in paths:
        with gzip.open(p, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def shard_paths(d: Path, prefix: str) -> list[Path]:
    return sorted(Path(d).glob(f"{prefix}-*.jsonl.gz"))


def write_json(path: Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def skip_if_done(marker: Path, force: bool, what: str) -> bool:
    """True when `marker` exists and --force was not given (the step's output is there)."""
    if marker.exists() and not force:
        log(f"{what}: output exists ({marker}); skipping (use --force to redo)")
        return True
    return False


# ----------------------------------------------------------------------------------------
# FIM formats (must match the server's templates, docs/model-manifest.md)
# ----------------------------------------------------------------------------------------

def spm_prompt_pieces(prefix: str, suffix: str) -> list[tuple[str, bool]]:
    """SPM prompt as (text, is_special) pieces: <pre><suf>{suffix}<mid>{prefix}."""
    return [(FIM_PREFIX, True), (FIM_SUFFIX, True), (suffix, False), (FIM_MIDDLE, True),
            (prefix, False)]


def psm_prompt_pieces(prefix: str, suffix: str) -> list[tuple[str, bool]]:
    return [(FIM_PREFIX, True), (prefix, False), (FIM_SUFFIX, True), (suffix, False),
            (FIM_MIDDLE, True)]


def encode_pieces(tok, pieces: list[tuple[str, bool]]) -> list[int]:
    """Encode each text piece separately (as the server does) and special tokens by id."""
    ids: list[int] = []
    for text, special in pieces:
        if special:
            ids.append(tok.token_to_id(text))
        elif text:
            ids.extend(tok.encode(text, add_special_tokens=False).ids)
    return ids


def python_exe() -> str:
    return sys.executable
