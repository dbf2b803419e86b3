#!/usr/bin/env python3
"""Fine-tune an existing checkpoint (transformers Llama layout, e.g. work/runs/gpu-28m/hf) on
your own repositories, then export it like any other.

    python corpus.py --sources '' --repo ~/src/our-service --repo ~/src/our-lib=lib \\
        --out work/ft/corpus
    python curate.py --corpus work/ft/corpus --out work/ft/curated --eval-fraction 0.1
    python finetune.py --init work/runs/gpu-28m/hf --curated work/ft/curated \\
        --run work/ft/run [--steps 300] [--lr 3e-4] [--device cuda]
    python export.py --hf work/ft/run/hf --out ../our-model --precision int8

The tokenizer is the base checkpoint's (its tokenizer.json); the model's size and context come
from its config.json. Everything else is pretrain.py (same FIM mix, schedule and outputs), with
a lower learning rate, a short warmup and fewer steps by default. A --preset picks the batch
geometry (default: cpu-small on CPU, gpu-28m on CUDA); --seq-len defaults to the checkpoint's
context.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pretrain  # noqa: E402
from common import WORK  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", type=Path, required=True, help="base HF checkpoint folder")
    ap.add_argument("--curated", type=Path, required=True)
    ap.add_argument("--run", type=Path, default=WORK / "ft" / "run")
    ap.add_argument("--data", type=Path, default=None, help="default: RUN/tokens")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--force", action="store_true")
    args, rest = ap.parse_known_args(argv)
    cfg = json.loads((args.init / "config.json").read_text())
    preset = args.preset
    if preset is None:
        import torch
        cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
        preset = "gpu-28m" if cuda else "cpu-small"
    seq = str(cfg.get("max_position_embeddings", 512))
    pargs = ["--preset", preset, "--init", str(args.init), "--curated", str(args.curated),
             "--tokenizer", str(args.init / "tokenizer.json"), "--run", str(args.run),
             "--data", str(args.data or args.run / "tokens"), "--steps", str(args.steps),
             "--lr", str(args.lr), "--device", args.device, "--seq-len", seq,
             "--max-minutes", str(args.max_minutes)]
    if "--warmup" not in rest:
        pargs += ["--warmup", "20"]
    if args.force:
        pargs.append("--force")
    return pretrain.main(pargs + rest)


if __name__ == "__main__":
    main()
