#!/usr/bin/env python3
"""Step 4: pre-train a Llama-style decoder (transformers.LlamaForCausalLM) from scratch with FIM.

    python pretrain.py --preset tiny|cpu-small|gpu-28m [--device auto|cpu|cuda]
                       [--curated work/curated] [--tokenizer work/tokenizer/tokenizer.json]
                       [--data work/tokens] [--run work/runs/PRESET] [--steps N] [--tokens N]
                       [--max-minutes M] [--init HF_DIR] [--force] [--force-data] [--snapshot]

Phases (each resumable):
  1. token shards: <data>/train-NNNNN.npz, <data>/val-NNNNN.npz (FIM applied, see fim.py),
     reused when <data>/data.json exists and matches the settings.
  2. training: AdamW, linear warmup + cosine decay to 10%, grad clip 1.0, bf16 autocast on
     CUDA, fp32 on CPU. Batches are random windows of the concatenated token stream.
     Resumes from <run>/state.pt (optimizer + step) unless --force.
  3. output: <run>/hf/ — the standard Hugging Face layout (config.json, model.safetensors,
     generation_config.json, tokenizer.json, tokenizer_config.json), <run>/loss.csv,
     <run>/loss.png, <run>/summary.json.
Use split_checkpoint.py to cut <run>/hf (or state.pt) into <= 16 MiB parts for transport.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EOS, FILE_SEP, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, WORK, log, shard_paths, write_json  # noqa: E402

PRESETS = {
    # a few hundred K params; seconds on CPU (tests)
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=160,
                 seq_len=128, micro_batch=8, grad_accum=1, lr=3e-3, warmup=5, steps=40,
                 eval_every=20, eval_batches=2, ckpt_every=20, tie=True, max_minutes=5),
    # ~4M params (4k vocab); < 1 h on 2 CPU cores (~600 tokens/s there: ~1.5M tokens)
    "cpu-small": dict(hidden=256, layers=4, heads=4, kv_heads=2, head_dim=64, intermediate=704,
                      seq_len=512, micro_batch=8, grad_accum=1, lr=2e-3, warmup=30, steps=1500,
                      eval_every=50, eval_batches=4, ckpt_every=50, tie=True, max_minutes=45),
    # ~28M params (16k vocab); one GPU, bf16
    "gpu-28m": dict(hidden=512, layers=8, heads=8, kv_heads=4, head_dim=64, intermediate=1408,
                    seq_len=2048, micro_batch=32, grad_accum=1, lr=1.5e-3, warmup=300,
                    steps=15000, eval_every=500, eval_batches=16, ckpt_every=1000, tie=True,
                    max_minutes=0),
}


def hf_tokenizer(tokenizer_json: Path):
    from transformers import PreTrainedTokenizerFast
    return PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json), eos_token=EOS, pad_token=EOS, unk_token=None,
        bos_token=None, additional_special_tokens=[FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FILE_SEP],
        model_max_length=1 << 30, clean_up_tokenization_spaces=False)


def save_hf(model, tokenizer_json: Path, out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    hf_tokenizer(tokenizer_json).save_pretrained(tmp)
    shutil.copy(tokenizer_json, tmp / "tokenizer.json")  # the exact trained file
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def make_config(p: dict, vocab: int):
    from transformers import LlamaConfig
    return LlamaConfig(
        vocab_size=vocab, hidden_size=p["hidden"], intermediate_size=p["intermediate"],
        num_hidden_layers=p["layers"], num_attention_heads=p["heads"],
        num_key_value_heads=p["kv_heads"], head_dim=p["head_dim"],
        max_position_embeddings=p["seq_len"], rms_norm_eps=1e-5, rope_theta=10000.0,
        hidden_act="silu", tie_word_embeddings=p["tie"], bos_token_id=None, eos_token_id=0,
        pad_token_id=0, attention_bias=False, mlp_bias=False, initializer_range=0.02,
        torch_dtype="float32")


def lr_at(step: int, total: int, warmup: int, peak: float, min_ratio: float = 0.1) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def plot_losses(csv_path: Path, png: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    tok = [int(r["tokens"]) / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(tok, [float(r["loss"]) for r in rows], lw=0.8, label="train")
    vals = [(t, float(r["val_loss"])) for t, r in zip(tok, rows) if r["val_loss"]]
    if vals:
        ax.plot(*zip(*vals), "o-", ms=3, label="val (held-out packages)")
    ax.set_xlabel("tokens (M)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def prepare_data(args, tok) -> dict:
    from fim import prepare_tokens
    settings = {"tokenizer_vocab": tok.get_vocab_size(), "fim_rate": args.fim_rate,
                "spm_rate": args.spm_rate, "ctx_rate": args.ctx_rate, "seed": args.seed,
                "chunk_chars": args.chunk_chars, "data_epochs": args.data_epochs,
                "max_data_tokens": args.max_data_tokens,
                "tokenizer_sha256": hashlib.sha256(args.tokenizer.read_bytes()).hexdigest()}
    meta = args.data / "data.json"
    if meta.exists() and not args.force_data:
        old = json.loads(meta.read_text())
        # Content, not paths: shards prepared on one machine are reused on another (e.g. a
        # GPU machine that has the token shards and the tokenizer but not the curated corpus).
        if {k: v for k, v in old.get("settings", {}).items() if k != "curated"} == settings:
            log(f"prepare: token shards exist ({args.data}); reusing (--force-data to redo)")
            return old
        log("prepare: settings changed; rebuilding token shards")
    if args.data.exists():
        shutil.rmtree(args.data)
    train_shards = shard_paths(args.curated, "train")
    eval_shards = shard_paths(args.curated, "eval")
    if not train_shards:
        sys.exit(f"pretrain: no curated train shards in {args.curated}")
    stats = {"train": [], "val": None}
    for e in range(args.data_epochs):
        stats["train"].append(prepare_tokens(
            tok, train_shards, args.data, f"train-e{e}", fim_rate=args.fim_rate,
            spm_rate=args.spm_rate, ctx_rate=args.ctx_rate, seed=args.seed + e,
            chunk_chars=args.chunk_chars, max_tokens=int(args.max_data_tokens)))
    src = eval_shards or train_shards[-1:]
    stats["val"] = prepare_tokens(tok, src, args.data, "val", fim_rate=args.fim_rate,
                                  spm_rate=args.spm_rate, ctx_rate=args.ctx_rate,
                                  seed=args.seed + 999, chunk_chars=args.chunk_chars,
                                  max_tokens=2_000_000)
    out = {"settings": settings | {"curated": str(args.curated.resolve())}, "stats": stats}
    write_json(meta, out)
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=list(PRESETS), default="cpu-small")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--curated", type=Path, default=WORK / "curated")
    ap.add_argument("--tokenizer", type=Path, default=WORK / "tokenizer" / "tokenizer.json")
    ap.add_argument("--data", type=Path, default=None, help="token shards (default work/tokens)")
    ap.add_argument("--run", type=Path, default=None, help="run folder (default work/runs/PRESET)")
    ap.add_argument("--init", type=Path, default=None, help="start from this HF checkpoint")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--tokens", type=float, default=None, help="token budget (overrides --steps)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="shorten the schedule so training ends in about this time (0 = none)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--micro-batch", type=int, default=None)
    ap.add_argument("--grad-accum", type=int, default=None)
    ap.add_argument("--seq-len", type=int, default=None)
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--spm-rate", type=float, default=0.8, help="share of FIM samples in SPM form")
    ap.add_argument("--ctx-rate", type=float, default=0.1, help="FIM samples with repo context")
    ap.add_argument("--chunk-chars", type=int, default=0, help="0 = 3.5 * seq_len")
    ap.add_argument("--data-epochs", type=int, default=1, help="FIM variants of the data")
    ap.add_argument("--max-data-tokens", type=float, default=0,
                    help="stop preparing training tokens after this many (0 = all)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="torch.compile (CUDA)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--force", action="store_true", help="restart training from scratch")
    ap.add_argument("--force-data", action="store_true", help="rebuild token shards")
    ap.add_argument("--snapshot", action="store_true",
                    help="write <run>/hf-step<N>/ (transformers layout) from the run's last "
                         "state.pt and stop; safe while that run is still training")
    ap.add_argument("--prepare-only", action="store_true",
                    help="write the token shards and stop (to train elsewhere)")
    args = ap.parse_args(argv)
    p = dict(PRESETS[args.preset])
    for k in ["steps", "lr", "warmup", "micro_batch", "grad_accum", "seq_len", "max_minutes"]:
        if getattr(args, k) is not None:
            p[k] = getattr(args, k)
    if not args.chunk_chars:
        args.chunk_chars = int(3.5 * p["seq_len"])
    args.data = args.data or WORK / "tokens"
    args.run = args.run or WORK / "runs" / args.preset
    return args, p


def main(argv=None):
    args, p = parse_args(argv)
    import torch
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("pretrain: --device cuda but CUDA is not available")
    run: Path = args.run
    final = run / "hf"
    if args.snapshot:
        st = torch.load(run / "state.pt", map_location="cpu", weights_only=False)
        tok = Tokenizer.from_file(str(args.tokenizer))
        model = LlamaForCausalLM(make_config(p, tok.get_vocab_size()))
        model.load_state_dict(st["model"])
        out = run / f"hf-step{st['step']}"
        save_hf(model, args.tokenizer, out)
        log(f"pretrain: snapshot of step {st['step']}/{st['total']} in {out}")
        return out
    if final.exists() and (run / "summary.json").exists() and not args.force:
        log(f"pretrain: {final} exists; skipping (use --force to retrain)")
        return final
    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    tok = Tokenizer.from_file(str(args.tokenizer))
    data_meta = prepare_data(args, tok)
    if args.prepare_only:
        log(f"pretrain: token shards ready in {args.data}")
        return None
    from fim import load_tokens
    train = np.concatenate([load_tokens(args.data, f"train-e{e}") for e in range(args.data_epochs)])
    val = load_tokens(args.data, "val")
    if len(val) < p["seq_len"] + 2:
        val = train[-(p["seq_len"] + 2) * 4:]
    S, B, A = p["seq_len"], p["micro_batch"], p["grad_accum"]
    if len(train) < S + 2:
        sys.exit(f"pretrain: only {len(train)} training tokens; need more than seq_len {S}")
    tokens_per_step = S * B * A
    total = p["steps"]
    if args.tokens:
        total = max(1, int(args.tokens // tokens_per_step))

    if args.init:
        model = LlamaForCausalLM.from_pretrained(args.init, torch_dtype=torch.float32)
        if model.config.vocab_size != tok.get_vocab_size():
            sys.exit("pretrain: --init checkpoint's vocabulary differs from --tokenizer")
    else:
        model = LlamaForCausalLM(make_config(p, tok.get_vocab_size()))
    model.to(device)
    n_params = sum(t.numel() for t in model.parameters())
    n_embed = model.model.embed_tokens.weight.numel()
    log(f"pretrain: {args.preset} on {device}: {n_params / 1e6:.2f}M params "
        f"({(n_params - n_embed) / 1e6:.2f}M non-embedding), {len(train):,} train tokens, "
        f"{tokens_per_step:,} tokens/step, {total} steps planned")

    decay = [t for n, t in model.named_parameters() if t.dim() >= 2]
    no_decay = [t for n, t in model.named_parameters() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=p["lr"], betas=(0.9, 0.95), eps=1e-8,
                            fused=(device == "cuda"))
    planned = total
    step, tokens_seen, elapsed_prev = 0, 0, 0.0
    state_path = run / "state.pt"
    csv_path = run / "loss.csv"
    if state_path.exists() and not args.force:
        st = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, tokens_seen, total = st["step"], st["tokens"], st["total"]
        elapsed_prev = st.get("elapsed", 0.0)
        log(f"pretrain: resumed at step {step}/{total}")
    else:
        with open(csv_path, "w", newline="") as f:
            csv.writer(f).writerow(["step", "tokens", "lr", "loss", "val_loss", "tok_per_s",
                                    "elapsed_s"])
    fwd_model = torch.compile(model) if (args.compile and device == "cuda") else model
    rng = np.random.default_rng(args.seed + step)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast(
        "cpu", enabled=False)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True

    def batch_from(arr: np.ndarray, n: int, gen) -> torch.Tensor:
        # windows of S tokens; labels = inputs (transformers shifts them inside the loss)
        idx = gen.integers(0, len(arr) - S, size=n)
        x = np.stack([arr[i:i + S] for i in idx]).astype(np.int64)
        return torch.from_numpy(x).to(device, non_blocking=True)

    val_gen = np.random.default_rng(777)
    val_batches = [batch_from(val, B, val_gen) for _ in range(p["eval_batches"])]

    @torch.no_grad()
    def evaluate() -> float:
        model.eval()
        losses = []
        for xb in val_batches:
            with amp:
                out = fwd_model(input_ids=xb, labels=xb)
            losses.append(float(out.loss))
        model.train()
        return float(np.mean(losses))

    def save_state():
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "tokens": tokens_seen, "total": total, "elapsed": elapsed},
                   state_path.with_suffix(".tmp"))
        os.replace(state_path.with_suffix(".tmp"), state_path)

    model.train()
    t0 = time.time()
    t_last, tok_last = t0, tokens_seen
    elapsed = elapsed_prev
    max_minutes = p.get("max_minutes") or 0
    replan_at = step + 10
    t_plan, step_plan = time.time(), step
    while step < total:
        lr = lr_at(step, total, p["warmup"], p["lr"])
        for g in opt.param_groups:
            g["lr"] = lr
        loss_acc = 0.0
        for _ in range(A):
            xb = batch_from(train, B, rng)
            with amp:
                out = fwd_model(input_ids=xb, labels=xb)
            (out.loss / A).backward()
            loss_acc += float(out.loss.detach()) / A
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += tokens_per_step
        elapsed = elapsed_prev + time.time() - t0
        # Fit the cosine schedule into --max-minutes: once the speed is known (step 10), and
        # again every 25 steps from the recent speed, so a machine that gets busier mid-run
        # still finishes in time. In the first half of the run the schedule may also grow back
        # (up to the planned steps) when the machine gets quieter; later it only shrinks, so
        # the cosine decay is never stretched once it is under way.
        if max_minutes and (step == replan_at or step % 25 == 0) and step < total:
            recent = (time.time() - t_plan) / max(1, step - step_plan)
            fit = min(planned, step + int((max_minutes * 60 - elapsed) / max(recent, 1e-6)))
            if fit < total or (fit > total * 1.02 and step < total / 2):
                log(f"pretrain: {recent:.2f} s/step; schedule {total} -> {max(step + 1, fit)} "
                    f"steps to fit {max_minutes} min")
                total = max(step + 1, fit)
            t_plan, step_plan = time.time(), step
        val_loss = ""
        if step % p["eval_every"] == 0 or step == total:
            val_loss = f"{evaluate():.4f}"
        now = time.time()
        tps = (tokens_seen - tok_last) / max(now - t_last, 1e-6)
        t_last, tok_last = now, tokens_seen
        with open(csv_path, "a", newline="") as f:
            csv.writer(f).writerow([step, tokens_seen, f"{lr:.6g}", f"{loss_acc:.4f}", val_loss,
                                    f"{tps:.0f}", f"{elapsed:.1f}"])
        if step % 10 == 0 or val_loss or step == total:
            log(f"step {step}/{total} loss {loss_acc:.4f}"
                + (f" val {val_loss}" if val_loss else "") + f" lr {lr:.2e} {tps:,.0f} tok/s")
        if step % p["ckpt_every"] == 0 and step < total:
            save_state()
            plot_losses(csv_path, run / "loss.png", f"moat {args.preset}")
    save_state()
    save_hf(model, args.tokenizer, final)
    plot_losses(csv_path, run / "loss.png", f"moat {args.preset}: {n_params / 1e6:.1f}M params")
    rows = list(csv.DictReader(open(csv_path)))
    vals = [float(r["val_loss"]) for r in rows if r["val_loss"]]
    summary = {"preset": args.preset, "params": n_params, "non_embedding_params": n_params - n_embed,
               "device": device, "steps": step, "tokens_seen": tokens_seen,
               "train_tokens_available": int(len(train)), "elapsed_s": round(elapsed, 1),
               "final_train_loss": float(rows[-1]["loss"]) if rows else None,
               "final_val_loss": vals[-1] if vals else None,
               "hyperparameters": p, "data": data_meta.get("stats"),
               "torch": torch.__version__}
    write_json(run / "summary.json", summary)
    log(f"pretrain: done: {final} (val loss {summary['final_val_loss']})")
    return final


if __name__ == "__main__":
    main()
