#!/usr/bin/env python3
"""Run the whole pipeline: corpus -> curate -> tokenizer -> pretrain -> export -> tasks -> eval -> card.

    python run_all.py --preset cpu-small [--work work] [--out ../moat-small] [--device auto]
                      [--sources stdlib,site-packages,cargo,npm,include,go,jdk]
                      [--max-mb-per-source 30] [--max-files-per-source 0] [--repo PATH ...]
                      [--precision int8] [--eval-limit 0] [--force]

Every step skips work whose output exists (pass --force to redo all of them, or delete the
step's output). Extra arguments after `--` go to pretrain.py (e.g. `-- --steps 500`).
The tokenizer's vocabulary follows the preset (tiny 512, cpu-small 4096, gpu-28m 16384)
unless --vocab-size is given.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VOCAB = {"tiny": 512, "cpu-small": 4096, "gpu-28m": 16384}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu-small", choices=list(VOCAB))
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--out", type=Path, default=None, help="model folder (default WORK/model-PRESET)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sources", default="stdlib,site-packages,cargo,npm,include,go,jdk")
    ap.add_argument("--max-mb-per-source", type=float, default=30)
    ap.add_argument("--max-files-per-source", type=int, default=0)
    ap.add_argument("--repo", action="append", default=[])
    ap.add_argument("--npm-pack", nargs="*", default=[])
    ap.add_argument("--vocab-size", type=int, default=0)
    ap.add_argument("--tokenizer-mb", type=float, default=60, help="text to train the BPE on")
    ap.add_argument("--eval-fraction", type=float, default=0.05)
    ap.add_argument("--precision", default="int8", choices=["int4", "int8", "fp32"])
    ap.add_argument("--tasks-per-language", type=int, default=200)
    ap.add_argument("--eval-limit", type=int, default=0)
    ap.add_argument("--name", default=None)
    ap.add_argument("--force", action="store_true")
    args, extra = ap.parse_known_args(argv)
    if extra and extra[0] == "--":
        extra = extra[1:]
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    out = args.out or w / f"model-{args.preset}"
    force = ["--force"] if args.force else []
    py = sys.executable

    def step(name, script, *a):
        t0 = time.time()
        print(f"\n=== {name} ===", flush=True)
        r = subprocess.run([py, str(HERE / script), *map(str, a)])
        if r.returncode != 0:
            sys.exit(f"run_all: {name} failed ({r.returncode})")
        print(f"=== {name}: {time.time() - t0:.1f} s ===", flush=True)

    corpus_args = ["--out", w / "corpus", "--sources", args.sources,
                   "--max-mb-per-source", args.max_mb_per_source,
                   "--max-files-per-source", args.max_files_per_source]
    for r in args.repo:
        corpus_args += ["--repo", r]
    if args.npm_pack:
        corpus_args += ["--npm-pack", *args.npm_pack]
    step("corpus", "corpus.py", *corpus_args, *force)
    step("curate", "curate.py", "--corpus", w / "corpus", "--out", w / "curated",
         "--eval-fraction", args.eval_fraction, *force)
    step("tokenizer", "tokenizer.py", "--curated", w / "curated", "--out", w / "tokenizer",
         "--vocab-size", args.vocab_size or VOCAB[args.preset], "--max-mb", args.tokenizer_mb,
         *force)
    step("pretrain", "pretrain.py", "--preset", args.preset, "--device", args.device,
         "--curated", w / "curated", "--tokenizer", w / "tokenizer" / "tokenizer.json",
         "--data", w / "tokens", "--run", w / "runs" / args.preset, *force, *extra)
    step("export", "export.py", "--hf", w / "runs" / args.preset / "hf", "--out", out,
         "--precision", args.precision, "--name", args.name or f"moat-{args.preset}", *force)
    step("make_tasks", "make_tasks.py", "--curated", w / "curated", "--out", w / "tasks.jsonl",
         "--per-language", args.tasks_per_language, *force)
    step("eval", "eval_nextline.py", "--model", out, "--tasks", w / "tasks.jsonl",
         "--out", w / f"eval-{args.preset}.json", "--limit", args.eval_limit)
    step("model_card", "model_card.py", "--model", out, "--work", w, "--preset", args.preset)
    print(f"\nrun_all: model in {out}; eval in {w / f'eval-{args.preset}.json'}")


if __name__ == "__main__":
    main()
