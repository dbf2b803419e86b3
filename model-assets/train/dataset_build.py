#!/usr/bin/env python3
"""The data set half of `moat dataset build`: curation, held-out split, FIM samples in the base
model's own format, report. `moat` runs it after reading the repositories' tracked files and
scrubbing their secrets (server/moat/src/dataset/build.rs); it is not meant to be run by hand.

    python dataset_build.py --files FILES.jsonl --gathered GATHERED.json --base MODEL_DIR \\
        --out DIR [--heldout 0.1] [--recent-weight 2] [--seq-len 1024] [--seed 0] \\
        [--feedback FEEDBACK.jsonl]

Input: FILES.jsonl, one scrubbed file per line ({"repo","path","language","recent","content"}),
and GATHERED.json (what reading the repositories dropped and scrubbed, for the report).
Curation is the pre-training corpus's (curate.py): size limits, vendored / generated /
minified / long-line / low-alphanumeric / data-like filters, exact dedup (whitespace-normalised
sha256) and near dedup (MinHash + LSH, Jaccard >= 0.85). The licence filter is not applied to a
team's own code; each repository's licence file is noted in the report instead.

Output (DIR):
  train.jsonl     one FIM sample per line: {"repo","path","language","ids"} (token ids of the base
                  model's tokenizer: the model's FIM prompt for a cursor in the file, then the
                  middle, then the end-of-document token; text pieces tokenized separately, as
                  the server does). 90% of the cursors are the editor's: after a line's
                  indentation, the middle the rest of that line or of up to 4 more lines
  heldout.jsonl   the same for the held-out files (evaluation loss)
  heldout/REPO/PATH  the held-out files themselves (scrubbed), for `moat dataset tasks`
  dataset.json    what the samples are for: the base model's name, its tokenizer's sha256, the
                  template, the sequence length, counts
  report.json     files kept and dropped per reason, secrets scrubbed per kind (counts only),
                  tokens and files per language and split, licences
Deterministic: the same input gives byte-identical output (cursors are seeded by file names).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import stable_hash01  # noqa: E402
from curate import Deduper, quality_filter  # noqa: E402
from fim import chunk_document, fim_split  # noqa: E402

FORMAT = 1
DEFAULT_TEMPLATES = {
    "spm": "{bos}{fim_prefix}{fim_suffix}{suffix}{fim_middle}{prefix}",
    "psm": "{bos}{fim_prefix}{prefix}{fim_suffix}{suffix}{fim_middle}",
}
FILTERS = ["too_small", "too_large", "vendored", "generated", "long_lines", "minified",
           "alnum_ratio", "data_like", "exact_dup", "near_dup"]


class DatasetError(Exception):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ModelFormat:
    """The base model's FIM prompt, built exactly as the server builds it from model.toml."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer
        manifest_path = folder / "model.toml"
        if not manifest_path.is_file():
            raise DatasetError(f"{folder} has no model.toml")
        m = tomllib.loads(manifest_path.read_text())
        self.folder = folder
        self.name = m.get("model", {}).get("name", folder.name)
        self.tokenizer_path = folder / m.get("model", {}).get("tokenizer", "tokenizer.json")
        self.tok = Tokenizer.from_file(str(self.tokenizer_path))
        tokens = m.get("tokens", {})
        fim = m.get("fim", {})
        self.mode = fim.get("mode", "spm")
        self.template = fim.get("template") or DEFAULT_TEMPLATES.get(self.mode)
        if not self.template:
            raise DatasetError(f"{manifest_path}: unknown FIM mode {self.mode!r}")
        self.pieces: list[tuple[str, bool]] = []  # (text or placeholder, is_placeholder)
        for part in re.split(r"(\{[a-z_]+\})", self.template):
            if not part:
                continue
            if part.startswith("{") and part.endswith("}"):
                self.pieces.append((part[1:-1], True))
            else:
                self.pieces.append((part, False))
        self.special: dict[str, int | None] = {}
        for name, is_ph in self.pieces:
            if is_ph and name not in ("prefix", "suffix"):
                text = tokens.get(name, "")
                if not text:
                    self.special[name] = None  # e.g. no BOS: nothing
                    continue
                tid = self.tok.token_to_id(text)
                if tid is None:
                    raise DatasetError(f"{manifest_path}: token {text!r} ({name}) is not in "
                                       f"{self.tokenizer_path.name}")
                self.special[name] = tid
        # The token that ends a middle: the end-of-document token when the model stops on it
        # (FIM samples are documents in pre-training, and a code model's FIM habit is to end
        # them so), else the manifest's EOS. Qwen2.5-Coder-Instruct's EOS is the chat's
        # <|im_end|>; teaching it that after a middle made suggestions longer and worse.
        eos = tokens.get("eos", "")
        if "<|endoftext|>" in tokens.get("stop", []):
            eos = "<|endoftext|>"
        self.end_token = eos
        self.eos_id = self.tok.token_to_id(eos) if eos else None
        if self.eos_id is None:
            raise DatasetError(f"{manifest_path}: end token {eos!r} is not in the tokenizer")
        if not any(is_ph and name == "prefix" for name, is_ph in self.pieces):
            raise DatasetError(f"{manifest_path}: the FIM template has no {{prefix}}")
        self.fim = any(is_ph and name == "suffix" for name, is_ph in self.pieces)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids if text else []

    def sample(self, prefix: str, middle: str, suffix: str) -> list[int]:
        """The prompt the server would send for a cursor between prefix and suffix, then the
        middle the model should write, then the end token."""
        ids: list[int] = []
        for name, is_ph in self.pieces:
            if not is_ph:
                ids.extend(self.encode(name))
            elif name == "prefix":
                ids.extend(self.encode(prefix))
            elif name == "suffix":
                ids.extend(self.encode(suffix))
            elif self.special.get(name) is not None:
                ids.append(self.special[name])
        ids.extend(self.encode(middle))
        ids.append(self.eos_id)
        return ids

    def describe(self) -> dict:
        return {"name": self.name, "folder": str(self.folder), "mode": self.mode,
                "template": self.template, "end_token": self.end_token,
                "tokenizer_sha256": sha256_file(self.tokenizer_path),
                "vocab_size": self.tok.get_vocab_size(), "eos_id": self.eos_id}


def fit(fmt: ModelFormat, prefix: str, middle: str, suffix: str, seq_len: int) -> list[int] | None:
    """A sample of at most seq_len tokens: the prefix loses its first lines and the suffix its
    last ones until it fits (the cursor and the middle are kept)."""
    for _ in range(64):
        ids = fmt.sample(prefix, middle, suffix)
        if len(ids) <= seq_len:
            return ids
        pre_lines = prefix.splitlines(keepends=True)
        suf_lines = suffix.splitlines(keepends=True)
        if len(prefix) >= len(suffix) and len(pre_lines) > 1:
            prefix = "".join(pre_lines[max(1, len(pre_lines) // 4):])
        elif len(suf_lines) > 1:
            suffix = "".join(suf_lines[:len(suf_lines) - max(1, len(suf_lines) // 4)])
        elif suffix:
            suffix = ""
        elif len(pre_lines) > 1:
            prefix = "".join(pre_lines[max(1, len(pre_lines) // 4):])
        else:
            return None
    return None


def line_split(text: str, rng: random.Random, random_rate: float) -> tuple[str, str, str]:
    """(prefix, middle, suffix): the editor's case (the cursor after a line's indentation, the
    middle the rest of that line or of a few lines) except for `random_rate` of the samples,
    which split at two uniform positions (fim.py's other half)."""
    if rng.random() < random_rate:
        a, b = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        return text[:a], text[a:b], text[b:]
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    lines = [(st, text.find("\n", st)) for st in starts]
    lines = [(st, e if e >= 0 else len(text)) for st, e in lines]
    cand = [i for i, (st, e) in enumerate(lines) if text[st:e].strip()]
    if not cand:
        return fim_split(text, rng)
    i = rng.choice(cand)
    st, e = lines[i]
    st += len(text[st:e]) - len(text[st:e].lstrip(" \t"))
    k = min(len(lines) - 1, i + min(int(rng.expovariate(1.5)), 4))
    e = max(lines[k][1], lines[i][1])
    return text[:st], text[st:e], text[e:]


def file_samples(fmt: ModelFormat, rec: dict, copies: int, seq_len: int, seed: int,
                 random_rate: float = 0.1) -> list[list[int]]:
    """FIM samples of one file: its chunks (cut at line ends, ~3 characters per token), `copies`
    cursors each, seeded by the file's name."""
    out = []
    chunks = chunk_document(rec["content"], max(256, seq_len * 3))
    for ci, chunk in enumerate(chunks):
        if len(chunk.strip()) < 20:
            continue
        for k in range(copies):
            rng = random.Random(f"{seed}|{rec['repo']}|{rec['path']}|{ci}|{k}")
            prefix, middle, suffix = line_split(chunk, rng, random_rate)
            if not fmt.fim:
                # A prefix-only model sees no suffix.
                suffix = ""
            if not middle.strip():
                continue
            ids = fit(fmt, prefix, middle, suffix, seq_len)
            if ids is not None:
                out.append(ids)
    return out


def licence_notes(repos: list[dict]) -> dict:
    from corpus import license_from_dir
    notes = {}
    for r in repos:
        lic = license_from_dir(Path(r["root"]))
        notes[r["name"]] = "none found (own code)" if lic == "unknown" else lic
    return notes


def build(args) -> dict:
    fmt = ModelFormat(args.base)
    gathered = json.loads(args.gathered.read_text())
    records = [json.loads(line) for line in args.files.read_text().splitlines() if line.strip()]
    if not records:
        raise DatasetError("no source files left after reading the repositories (dropped: "
                           + ", ".join(f"{k} {v}" for k, v in gathered.get("dropped", {}).items())
                           + ")")
    qargs = SimpleNamespace(min_chars=args.min_chars, max_chars=args.max_chars,
                            max_line_length=args.max_line_length, min_alnum=args.min_alnum)
    removed = Counter()
    dedup = Deduper(num_perm=128, bands=32, threshold=args.near_dup_threshold)
    kept: list[dict] = []
    for rec in records:
        # A team's own code: the licence filter does not apply (noted in the report instead).
        why = quality_filter({**rec, "license": "own"}, qargs)
        if why is None:
            why = dedup.check(rec["content"])
        if why is not None:
            removed[why] += 1
            continue
        kept.append(rec)
    if not kept:
        raise DatasetError(f"every file was filtered out ({dict(removed)}); nothing to train on")

    def split_hash(r):
        return stable_hash01(f"heldout:{args.seed}:{r['repo']}/{r['path']}")
    heldout = {id(r) for r in kept if split_hash(r) < args.heldout}
    if args.heldout > 0 and not heldout and len(kept) >= 2:
        heldout.add(id(min(kept, key=split_hash)))
    if len(heldout) == len(kept):
        heldout.discard(id(max(kept, key=split_hash)))

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=False)
    stats = {s: {"files": Counter(), "samples": Counter(), "tokens": Counter()}
             for s in ("train", "heldout")}
    with open(out / "train.jsonl", "w") as tf, open(out / "heldout.jsonl", "w") as hf:
        for rec in kept:
            split = "heldout" if id(rec) in heldout else "train"
            copies = max(1, args.recent_weight) if (rec.get("recent") and split == "train") else 1
            samples = file_samples(fmt, rec, copies, args.seq_len, args.seed, args.random_fim)
            f = hf if split == "heldout" else tf
            for ids in samples:
                f.write(json.dumps({"repo": rec["repo"], "path": rec["path"],
                                    "language": rec["language"], "ids": ids},
                                   separators=(",", ":")) + "\n")
                stats[split]["tokens"][rec["language"]] += len(ids)
            stats[split]["files"][rec["language"]] += 1
            stats[split]["samples"][rec["language"]] += len(samples)
            if split == "heldout":
                dest = out / "heldout" / rec["repo"] / rec["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(rec["content"])
        feedback_samples = 0
        if args.feedback:
            for line in args.feedback.read_text().splitlines():
                if not line.strip():
                    continue
                fb = json.loads(line)
                ids = fit(fmt, fb.get("prefix", ""), fb.get("completion", ""), fb.get("suffix", ""),
                          args.seq_len)
                if ids is None or not fb.get("completion", "").strip():
                    continue
                lang = fb.get("language", "other")
                tf.write(json.dumps({"repo": "feedback", "path": fb.get("path", ""),
                                     "language": lang, "ids": ids}, separators=(",", ":")) + "\n")
                stats["train"]["tokens"][lang] += len(ids)
                stats["train"]["samples"][lang] += 1
                feedback_samples += 1
    train_samples = sum(stats["train"]["samples"].values())
    if train_samples == 0:
        raise DatasetError("no training samples could be made (files too small?)")
    summary = {s: {k: dict(sorted(v.items())) for k, v in d.items()} for s, d in stats.items()}
    dataset = {
        "format": FORMAT,
        "base": fmt.describe(),
        "seq_len": args.seq_len,
        "seed": args.seed,
        "samples": {"train": train_samples, "heldout": sum(stats["heldout"]["samples"].values())},
        "tokens": {"train": sum(stats["train"]["tokens"].values()),
                   "heldout": sum(stats["heldout"]["tokens"].values())},
    }
    dropped = dict(sorted(gathered.get("dropped", {}).items()))
    report = {
        "repositories": [{k: v for k, v in r.items() if k != "root"} for r in gathered["repos"]],
        "licences": licence_notes(gathered["repos"]),
        "tracked_files": gathered["tracked_files"],
        "dropped_before_curation": dropped,
        "curated_files": len(records),
        "removed_by_curation": {k: removed.get(k, 0) for k in FILTERS if removed.get(k)},
        "kept_files": len(kept),
        "secrets_scrubbed": dict(sorted(gathered.get("secrets_scrubbed", {}).items())),
        "files_with_secrets_scrubbed": gathered.get("files_with_secrets_scrubbed", 0),
        "split": summary,
        "feedback_samples": feedback_samples,
        "feedback_without_text": gathered.get("feedback_without_text", 0),
        "base_model": fmt.name,
        "samples": dataset["samples"],
        "tokens": dataset["tokens"],
        "params": {"heldout": args.heldout, "recent_weight": args.recent_weight,
                   "seq_len": args.seq_len, "seed": args.seed,
                   "near_dup_threshold": args.near_dup_threshold},
    }
    for name, obj in (("dataset.json", dataset), ("report.json", report)):
        (out / name).write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return report


def print_report(r: dict) -> None:
    e = sys.stderr
    print(f"{'files':<28}{'count':>8}", file=e)
    print(f"{'tracked':<28}{r['tracked_files']:>8}", file=e)
    for k, v in r["dropped_before_curation"].items():
        print(f"{'- ' + k:<28}{v:>8}", file=e)
    for k, v in r["removed_by_curation"].items():
        print(f"{'- ' + k:<28}{v:>8}", file=e)
    print(f"{'kept':<28}{r['kept_files']:>8}", file=e)
    secrets = sum(r["secrets_scrubbed"].values())
    kinds = ", ".join(f"{k} {v}" for k, v in r["secrets_scrubbed"].items()) or "none"
    print(f"secrets scrubbed: {secrets} in {r['files_with_secrets_scrubbed']} files ({kinds})", file=e)
    print(f"\n{'language':<12}{'train files':>12}{'samples':>9}{'tokens':>10}"
          f"{'held-out files':>16}{'tokens':>9}", file=e)
    tr, ho = r["split"]["train"], r["split"]["heldout"]
    for lang in sorted(set(tr["files"]) | set(ho["files"]) | set(tr["tokens"])):
        print(f"{lang:<12}{tr['files'].get(lang, 0):>12}{tr['samples'].get(lang, 0):>9}"
              f"{tr['tokens'].get(lang, 0):>10}{ho['files'].get(lang, 0):>16}"
              f"{ho['tokens'].get(lang, 0):>9}", file=e)
    if r.get("feedback_samples") or r.get("feedback_without_text"):
        print(f"feedback: {r['feedback_samples']} accepted suggestions as samples, "
              f"{r.get('feedback_without_text', 0)} recorded without source text (skipped)", file=e)
    print(f"licences: {r['licences']}", file=e)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=Path, required=True)
    ap.add_argument("--gathered", type=Path, required=True)
    ap.add_argument("--base", type=Path, required=True, help="the base model's folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--heldout", type=float, default=0.1)
    ap.add_argument("--recent-weight", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--feedback", type=Path, default=None,
                    help="JSON lines {language, path, prefix, suffix, completion} of accepted "
                         "suggestions (written by moat from `moat serve`'s feedback records): "
                         "extra training samples")
    ap.add_argument("--random-fim", type=float, default=0.1,
                    help="share of samples split at random positions instead of at a line's "
                         "indentation (the editor's cursor)")
    ap.add_argument("--near-dup-threshold", type=float, default=0.85)
    ap.add_argument("--min-chars", type=int, default=50)
    ap.add_argument("--max-chars", type=int, default=200_000)
    ap.add_argument("--max-line-length", type=int, default=1000)
    ap.add_argument("--min-alnum", type=float, default=0.25)
    args = ap.parse_args(argv)
    try:
        report = build(args)
    except DatasetError as e:
        print(f"moat dataset build: {e}", file=sys.stderr)
        return 2
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
