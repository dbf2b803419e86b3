#!/usr/bin/env python3
"""Step 6b: next-line exact match and edit similarity of an exported model folder, per language,
with ONNX Runtime (greedy decoding, the manifest's FIM template: SPM by default).

    python eval_nextline.py --model ../moat-small --tasks work/tasks.jsonl
                            [--out work/eval.json] [--limit N] [--threads 2] [--max-new 48]

The prompt is cut to the context: the suffix gets at most a quarter of the token budget (its
head), the prefix the rest (its tail). The completion is the first line of the generated text;
exact match compares it with `expected` (trailing whitespace ignored); edit similarity is
1 - Levenshtein / max(len). Prints a table and writes JSON (overall and per language:
n, exact_match, edit_similarity, empty_rate, latency p50/p95 ms, first-token p50 ms).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LANGUAGES, log, write_json  # noqa: E402


def levenshtein(a: str, b: str) -> int:
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_similarity(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip()


def summarize(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    lat = [r["ms"] for r in rows]
    return {"n": len(rows),
            "exact_match": round(float(np.mean([r["em"] for r in rows])), 4),
            "edit_similarity": round(float(np.mean([r["es"] for r in rows])), 4),
            "empty_rate": round(float(np.mean([r["got"] == "" for r in rows])), 4),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
            "first_token_ms_p50": round(float(np.percentile([r["ttft"] for r in rows], 50)), 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="folder with model.toml")
    ap.add_argument("--tasks", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default: print only)")
    ap.add_argument("--limit", type=int, default=0, help="tasks per language (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-new", type=int, default=48)
    ap.add_argument("--max-prompt", type=int, default=1024, help="prompt token cap")
    ap.add_argument("--samples", type=Path, default=None, help="write per-task outputs (JSONL)")
    args = ap.parse_args(argv)

    from ort_runner import OrtModel
    m = OrtModel(args.model, threads=args.threads)
    tasks = [json.loads(l) for l in open(args.tasks) if l.strip()]
    if args.limit:
        seen: dict = defaultdict(int)
        kept = []
        for t in tasks:
            if seen[t["language"]] < args.limit:
                seen[t["language"]] += 1
                kept.append(t)
        tasks = kept
    budget = min(args.max_prompt, m.context_length - args.max_new - 8)
    rows = []
    samples = open(args.samples, "w") if args.samples else None
    for i, t in enumerate(tasks):
        pre = m.encode(t["prefix"])
        suf = m.encode(t["suffix"])
        suf = suf[:min(len(suf), budget // 4)]
        pre = pre[-(budget - len(suf)):] if budget - len(suf) > 0 else []
        prompt = m.fim_prompt(pre, suf)
        ids, ttft, total = m.generate(prompt, args.max_new)
        got = first_line(m.tok.decode(ids))
        exp = t["expected"].rstrip()
        row = {"language": t["language"], "em": got == exp, "es": edit_similarity(got, exp),
               "got": got, "ms": total * 1000, "ttft": ttft * 1000}
        rows.append(row)
        if samples:
            samples.write(json.dumps({"id": t["id"], "expected": exp, "got": got}) + "\n")
        if (i + 1) % 50 == 0:
            log(f"eval: {i + 1}/{len(tasks)} EM so far {np.mean([r['em'] for r in rows]):.3f}")
    if samples:
        samples.close()
    by_lang = defaultdict(list)
    for r in rows:
        by_lang[r["language"]].append(r)
    langs = sorted(by_lang, key=lambda l: (LANGUAGES + [l]).index(l))
    result = {"model": str(args.model), "model_name": m.manifest["model"]["name"],
              "tasks": str(args.tasks), "threads": args.threads, "max_new_tokens": args.max_new,
              "prompt_token_budget": budget, "overall": summarize(rows),
              "per_language": {l: summarize(by_lang[l]) for l in langs}}
    print(f"\n{'language':<12}{'n':>6}{'exact':>8}{'edit_sim':>10}{'empty':>8}{'p50 ms':>9}")
    for name, s in [*result["per_language"].items(), ("overall", result["overall"])]:
        if s["n"]:
            print(f"{name:<12}{s['n']:>6}{s['exact_match']:>8.3f}{s['edit_similarity']:>10.3f}"
                  f"{s['empty_rate']:>8.3f}{s['latency_ms_p50']:>9.1f}")
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
