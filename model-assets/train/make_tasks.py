#!/usr/bin/env python3
"""Step 6a: next-line completion tasks from the held-out packages (curate.py's eval split).

    python make_tasks.py [--curated work/curated] [--out work/tasks.jsonl] [--per-language 200]
                         [--per-file 2] [--seed 0] [--force]

Editor-style: the cursor sits on a line after its indentation; `expected` is the rest of that
line, `prefix` everything before the cursor, `suffix` everything after the line (from its
newline on). Lines with fewer than 4 non-blank characters or only closing brackets, and lines
of the file's leading comment block (licence headers), are not used.
Each line of the output is {"id","language","prefix","suffix","expected","path","repo"} — the
format `moat eval` reads. Deterministic for a given curated split and seed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LANGUAGES, WORK, log, read_shards, shard_paths, skip_if_done, stable_hash01  # noqa: E402

TRIVIAL_RE = re.compile(r"^[\s\)\]\}>;,]*$")


def tasks_for_file(rec: dict, rng: random.Random, k: int, max_prefix: int, max_suffix: int):
    text = rec["content"]
    lines = text.split("\n")
    offsets, off = [], 0
    for line in lines:
        offsets.append(off)
        off += len(line) + 1
    # skip the leading comment block (licence headers are boilerplate, not completion work)
    header_end = 0
    for header_end, line in enumerate(lines):
        body = line.strip()
        if body and not body.startswith(("#", "//", "/*", "*", "*/")):
            break
    cands = []
    for i, line in enumerate(lines):
        body = line.strip()
        if i < max(3, header_end) or len(body) < 4 or TRIVIAL_RE.match(body) or len(line) > 200:
            continue
        cands.append(i)
    rng.shuffle(cands)
    out = []
    for i in sorted(cands[:k]):
        line = lines[i]
        indent = len(line) - len(line.lstrip(" \t"))
        cursor = offsets[i] + indent
        end = offsets[i] + len(line)
        prefix = text[:cursor]
        if len(prefix) > max_prefix:
            cut = prefix.find("\n", len(prefix) - max_prefix)
            prefix = prefix[cut + 1:] if cut >= 0 else prefix[-max_prefix:]
        suffix = text[end:end + max_suffix]
        out.append({"id": f"{rec['id']}:{i + 1}", "language": rec["language"],
                    "prefix": prefix, "suffix": suffix, "expected": line[indent:].rstrip(),
                    "path": rec["path"], "repo": rec["package"]})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curated", type=Path, default=WORK / "curated")
    ap.add_argument("--out", type=Path, default=WORK / "tasks.jsonl")
    ap.add_argument("--per-language", type=int, default=200)
    ap.add_argument("--per-file", type=int, default=0,
                    help="tasks per file (0 = enough to reach --per-language, 2..20)")
    ap.add_argument("--max-prefix-chars", type=int, default=6000)
    ap.add_argument("--max-suffix-chars", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    if skip_if_done(args.out, args.force, "make_tasks"):
        return
    shards = shard_paths(args.curated, "eval")
    if not shards:
        sys.exit(f"make_tasks: no eval shards in {args.curated} (run curate.py first)")
    by_lang: dict[str, list] = defaultdict(list)
    for rec in read_shards(shards):
        by_lang[rec["language"]].append(rec)
    tasks = []
    counts = {}
    for lang in sorted(by_lang, key=lambda l: (LANGUAGES + [l]).index(l)):
        files = sorted(by_lang[lang], key=lambda r: stable_hash01(f"{args.seed}:{r['id']}"))
        per_file = args.per_file or max(2, min(20, -(-args.per_language // max(1, len(files)))))
        got = []
        for rec in files:
            rng = random.Random(f"{args.seed}:{rec['id']}")
            got.extend(tasks_for_file(rec, rng, per_file, args.max_prefix_chars,
                                      args.max_suffix_chars))
            if len(got) >= args.per_language:
                break
        got = got[:args.per_language]
        counts[lang] = len(got)
        tasks.extend(got)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    with open(tmp, "w") as f:
        for t in tasks:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    tmp.replace(args.out)
    log(f"make_tasks: {len(tasks)} tasks -> {args.out} {counts}")


if __name__ == "__main__":
    main()
