#!/usr/bin/env python3
"""The training half of `moat finetune`: LoRA fine-tuning of an installed model on a data set
from `moat dataset build`, merged into the base weights and exported as a new moat model.

    python finetune_lora.py --data DIR --base MODEL_DIR --name NAME --models-dir DIR
        [--budget-seconds S] [--budget-tokens N] [--steps N] [--lr 2e-4] [--rank 16]
        [--batch-tokens 2048] [--threads 2] [--precision int4|int8|fp32]

Steps (progress on stderr, one JSON line on stdout at the end):
  1. check   the data set's tokenizer is the base model's (sha256 of tokenizer.json): samples of
             another tokenizer are token ids that mean something else
  2. load    the base's transformers weights in float32: the model folder's `hf/` (a model the
             pipeline trained), else the source its import.json names (a GGUF is dequantized, a
             GGUF's twice-quantized tied embeddings are tied again, as in the import)
  3. train   LoRA adapters (peft) on every attention and MLP projection, AdamW, constant learning
             rate after a short warmup; samples in a seeded order, packed into micro-batches of
             --batch-tokens. It stops at the budget (wall-clock seconds or tokens seen, checked
             before every step) or after --steps, whichever comes first, and still exports.
             Held-out loss is measured before and after on the same held-out samples.
  4. merge   the adapters into the weights (W + BA); the result is a plain transformers model
  5. export  import_model.py on the merged folder (onnxruntime-genai's builder at the base's
             precision, manifest, logits check), with the base's FIM template and context
  6. commit  finetune.json (base, data, budget, tokens seen, time, losses, hardware) is added and
             the folder is renamed into MODELS_DIR/NAME in one step

An interrupted run (Ctrl-C, SIGTERM, an error) registers nothing: everything is written under
MODELS_DIR/.import-finetune-NAME-PID, which is removed on the way out (and by the next import
when the process was killed outright).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import sys
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class FinetuneError(Exception):
    pass


def log(msg: str) -> None:
    print(f"moat finetune: {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    from dataset_build import sha256_file as h
    return h(path)


def read_manifest(folder: Path) -> dict:
    p = folder / "model.toml"
    if not p.is_file():
        raise FinetuneError(f"{folder} is not a moat model (no model.toml)")
    return tomllib.loads(p.read_text())


def check_data(data: Path, base: Path, manifest: dict) -> dict:
    ds_path = data / "dataset.json"
    if not ds_path.is_file():
        raise FinetuneError(f"{data} is not a data set from `moat dataset build` (no dataset.json)")
    ds = json.loads(ds_path.read_text())
    if ds.get("format") != 1:
        raise FinetuneError(f"{ds_path}: unknown data set format {ds.get('format')!r}")
    tok = base / manifest.get("model", {}).get("tokenizer", "tokenizer.json")
    have = sha256_file(tok)
    want = ds.get("base", {}).get("tokenizer_sha256")
    if have != want:
        raise FinetuneError(
            f"the data set was built for the tokenizer of {ds.get('base', {}).get('name')!r} "
            f"(sha256 {str(want)[:12]}…), but the base model {manifest.get('model', {}).get('name')!r} "
            f"has another (sha256 {have[:12]}…): its token ids would mean other text. Rebuild it "
            f"with `moat dataset build ... --base {base.name}`")
    if not (data / "train.jsonl").is_file():
        raise FinetuneError(f"{data} has no train.jsonl")
    return ds


def load_base(base: Path):
    """(model, tokenizer, where) in float32 with tied embeddings re-tied as the import does."""
    import import_model as im
    hf = base / "hf"
    imp = base / "import.json"
    if (hf / "config.json").is_file():
        src, info = hf, im.inspect_folder(hf)
    elif imp.is_file():
        source = json.loads(imp.read_text()).get("source", {})
        src = Path(source.get("path", ""))
        if not src.exists():
            raise FinetuneError(f"the base model's weights are gone: {base.name} was imported from "
                                f"{src}, which no longer exists (its ONNX export cannot be trained)")
        info = im.inspect_gguf(src) if src.is_file() else im.inspect_folder(src)
    else:
        raise FinetuneError(f"{base} has no transformers weights to fine-tune (neither hf/ nor an "
                            "import.json naming its source): import it with `moat model import`")
    try:
        model, tok = im.load_model(src, info)
    except im.ImportError_ as e:
        raise FinetuneError(e.message)
    tie = im.tie_embeddings(model, info)
    return model, tok, str(src), tie


def read_samples(path: Path) -> list[list[int]]:
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line)["ids"])
    return out


def batches(samples: list[list[int]], batch_tokens: int, seq_len: int, seed: int):
    """Endless micro-batches: samples in a seeded order (reshuffled each epoch), grouped until
    the padded batch would exceed batch_tokens."""
    rng = random.Random(seed)
    epoch = 0
    while True:
        order = list(range(len(samples)))
        rng.shuffle(order)
        cur: list[list[int]] = []
        for i in order:
            s = samples[i][:seq_len]
            longest = max([len(s)] + [len(c) for c in cur])
            if cur and longest * (len(cur) + 1) > batch_tokens:
                yield cur, epoch
                cur = []
            cur.append(s)
        if cur:
            yield cur, epoch
        epoch += 1


def collate(batch: list[list[int]], pad_id: int):
    import torch
    n = max(len(s) for s in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, s in enumerate(batch):
        t = torch.tensor(s, dtype=torch.long)
        ids[i, :len(s)] = t
        labels[i, :len(s)] = t
        mask[i, :len(s)] = 1
    return ids, labels, mask


def heldout_loss(model, samples: list[list[int]], pad_id: int, seq_len: int,
                 device: str = "cpu") -> float | None:
    import torch
    if not samples:
        return None
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for s in samples:
            ids, labels, mask = (t.to(device) for t in collate([s[:seq_len]], pad_id))
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            n = int((labels[:, 1:] != -100).sum())
            total += float(out.loss) * n
            count += n
    model.train()
    return round(total / max(count, 1), 4)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def train(args, model, pad_id: int, ds: dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in present]
    if not targets:
        raise FinetuneError("the base model has none of the projections LoRA adapts "
                            f"({', '.join(LORA_TARGETS)})")
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                        target_modules=targets, bias="none", task_type="CAUSAL_LM")
    torch.manual_seed(args.seed)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = get_peft_model(model.to(device), config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log(f"LoRA r={args.rank} alpha={args.alpha} on {', '.join(targets)}: {trainable:,} trainable "
        f"of {total:,} parameters")
    seq_len = int(ds.get("seq_len", 1024))
    samples = read_samples(args.data / "train.jsonl")
    if not samples:
        raise FinetuneError(f"{args.data}/train.jsonl holds no samples")
    held = read_samples(args.data / "heldout.jsonl") if (args.data / "heldout.jsonl").is_file() else []
    held = held[:args.heldout_samples]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                            weight_decay=0.0)
    t0 = time.perf_counter()
    loss_before = heldout_loss(model, held, pad_id, seq_len, device)
    eval_seconds = time.perf_counter() - t0
    if loss_before is not None:
        log(f"held-out loss before: {loss_before} ({len(held)} samples, {eval_seconds:.0f} s)")
    model.train()
    started = time.perf_counter()
    budget_s = args.budget_seconds
    # The budget covers training; held-out loss after and the export come on top (the final
    # evaluation is skipped when the budget is spent and it would take long).
    step = tokens = 0
    step_times: list[float] = []
    losses: list[float] = []
    stop_reason = "steps"
    epoch = 0
    for batch, epoch in batches(samples, args.batch_tokens, seq_len, args.seed):
        if args.steps and step >= args.steps:
            stop_reason = "steps"
            break
        if args.budget_tokens and tokens >= args.budget_tokens:
            stop_reason = "token budget"
            break
        elapsed = time.perf_counter() - started
        if budget_s and step_times and elapsed + sorted(step_times)[len(step_times) // 2] > budget_s:
            stop_reason = "time budget"
            break
        if budget_s and elapsed > budget_s:
            stop_reason = "time budget"
            break
        ts = time.perf_counter()
        lr = args.lr * min(1.0, (step + 1) / max(1, args.warmup))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, labels, mask = (t.to(device) for t in collate(batch, pad_id))
        with torch.autocast(device, dtype=torch.bfloat16, enabled=args.bf16):
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens += int(mask.sum())
        losses.append(float(out.loss.detach()))
        step_times.append(time.perf_counter() - ts)
        if step == 1 or step % args.log_every == 0:
            log(f"step {step} loss {losses[-1]:.4f} tokens {tokens:,} "
                f"({tokens / (time.perf_counter() - started):.0f} tokens/s, epoch {epoch})")
    train_seconds = time.perf_counter() - started
    if step == 0:
        raise FinetuneError("the budget ended before the first step: give it more time or tokens")
    log(f"trained {step} steps, {tokens:,} tokens in {train_seconds:.0f} s (stopped: {stop_reason})")
    loss_after = None
    if held and (not budget_s or eval_seconds < max(60.0, 0.25 * budget_s)):
        loss_after = heldout_loss(model, held, pad_id, seq_len, device)
        log(f"held-out loss after: {loss_after}")
    merged = model.merge_and_unload().to("cpu")
    return {
        "model": merged,
        "record": {
            "steps": step, "tokens_seen": tokens, "epochs": epoch + 1 if step else 0,
            "train_seconds": round(train_seconds, 1), "stopped": stop_reason,
            "train_loss_first": round(losses[0], 4), "train_loss_last": round(losses[-1], 4),
            "train_loss_last10_mean": round(sum(losses[-10:]) / len(losses[-10:]), 4),
            "heldout_loss_before": loss_before, "heldout_loss_after": loss_after,
            "heldout_samples": len(held), "train_samples": len(samples),
            "lora": {"r": args.rank, "alpha": args.alpha, "targets": targets,
                     "trainable_parameters": trainable},
            "lr": args.lr, "warmup": args.warmup, "bf16_autocast": args.bf16, "batch_tokens": args.batch_tokens,
            "seq_len": seq_len, "seed": args.seed, "device": device,
        },
    }


def run(args) -> Path:
    import torch
    import import_model as im
    started = time.perf_counter()
    base: Path = args.base.resolve()
    manifest = read_manifest(base)
    log("[1/6] check: the data set against the base model's tokenizer")
    ds = check_data(args.data, base, manifest)
    models: Path = args.models_dir.resolve()
    models.mkdir(parents=True, exist_ok=True)
    name = im.slug(args.name)
    final = models / name
    if final.resolve() == base:
        raise FinetuneError(f"--out {name} is the base model itself: choose another name")
    im.clean_stale(models)
    stage = models / f".import-finetune-{name}-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        torch.set_num_threads(args.threads)
        log(f"[2/6] load: {base.name}'s transformers weights (float32)")
        model, tok, source, tie = load_base(base)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        log(f"[3/6] train: budget {args.budget_seconds or '-'} s / {args.budget_tokens or '-'} "
            f"tokens / {args.steps or '-'} steps, {args.threads} threads")
        result = train(args, model, pad_id, ds)
        merged = result["model"]
        log("[4/6] merge: adapters into the weights")
        hf = stage / "hf"
        merged.save_pretrained(hf, safe_serialization=True)
        tok.save_pretrained(hf)
        # The base's own tokenizer.json, byte for byte (transformers re-serializes it), so data
        # sets built for the base (checked by its sha256) also fit the fine-tuned model.
        shutil.copy(base / manifest.get("model", {}).get("tokenizer", "tokenizer.json"),
                    hf / "tokenizer.json")
        del merged, model
        log("[5/6] export: onnxruntime-genai builder via the import")
        imp = json.loads((base / "import.json").read_text()) if (base / "import.json").is_file() else {}
        precision = args.precision or imp.get("precision") or "int8"
        fim = manifest.get("fim", {})
        template = fim.get("mode", "spm")
        if fim.get("template", "").replace("{bos}", "") == "{prefix}":
            template = "prefix"
        iargs = SimpleNamespace(
            src=hf, out=stage / "model", models_dir=None, name=name, precision=precision,
            block_size=int(imp.get("block_size", 128)), template=template,
            context_length=int(manifest.get("model", {}).get("context_length", 2048)),
            sha256="", threads=args.threads, force=True)
        try:
            out = im.run_import(iargs)
        except im.ImportError_ as e:
            raise FinetuneError(f"the export failed: {e.message}")
        record = {
            "base": {"name": manifest.get("model", {}).get("name", base.name), "folder": str(base),
                     "weights": source, "tie": tie},
            "data": {"folder": str(args.data.resolve()), "samples": ds.get("samples"),
                     "tokens": ds.get("tokens")},
            "budget": {"seconds": args.budget_seconds, "tokens": args.budget_tokens,
                       "steps": args.steps},
            **result["record"],
            "precision": precision,
            "method": "LoRA merged into the base weights, re-exported with onnxruntime-genai's builder",
            "hardware": {"cpu": cpu_name(), "threads": args.threads,
                         "device": result["record"]["device"],
                         "gpu": (torch.cuda.get_device_name(0)
                                 if result["record"]["device"] == "cuda" else None),
                         "torch": torch.__version__},
            "seconds_total": round(time.perf_counter() - started, 1),
        }
        (out / "finetune.json").write_text(json.dumps(record, indent=2) + "\n")
        log(f"[6/6] commit: {final}")
        old = None
        if final.exists():
            old = models / f".replaced-{name}-{os.getpid()}"
            final.rename(old)
        out.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--base", type=Path, required=True, help="the base model's folder")
    ap.add_argument("--name", required=True, help="name of the new model")
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--budget-seconds", type=float, default=0)
    ap.add_argument("--budget-tokens", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0, help="most optimizer steps (0: no limit)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=int, default=32)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--heldout-samples", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["int4", "int8", "fp32"], default=None,
                    help="export precision (default: the base's)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="where to train (auto: a GPU when torch sees one)")
    ap.add_argument("--bf16", action="store_true",
                    help="bfloat16 autocast for the forward pass (CPUs with AVX512-BF16/AMX)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=10)
    args = ap.parse_args(argv)
    if not (args.budget_seconds or args.budget_tokens or args.steps):
        ap.error("give a budget: --budget-seconds, --budget-tokens or --steps")

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupted)
    try:
        out = run(args)
    except FinetuneError as e:
        log(str(e))
        return 2
    except KeyboardInterrupt:
        log("interrupted: nothing was registered")
        return 130
    print(json.dumps({"model": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
