#!/usr/bin/env python3
"""Step 5: export a transformers checkpoint to ONNX with onnxruntime-genai's model builder and
write a moat model folder (model.toml, tokenizer.json, model.onnx), then validate it.

    python export.py --hf work/runs/cpu-small/hf --out ../moat-small [--precision int8]
                     [--name NAME] [--threads 2] [--extra KEY=VALUE ...] [--force]

Runs `python -m onnxruntime_genai.models.builder -i HF -o OUT/_builder -p PRECISION -e cpu
--extra_options prune_lm_head=true [KEY=VALUE ...]`, makes the pruned LM head compute the last
`logits_to_keep` rows (lm_head_rows.py: one for a prompt, more to verify a speculative draft),
folds the external weights into one model.onnx, copies tokenizer.json, and writes model.toml with layout "gqa-shared",
num_layers / num_kv_heads / head_dim / context_length from config.json and the input/output
names and KV dtype read from the exported graph. Validation: for a few prompts, logits from ONNX
Runtime (prefill + single-token steps through the KV cache) against PyTorch (fp32), max abs
difference and top-1 agreement; plus first-token latency for a 512-token prompt on --threads.
Results: OUT/export_report.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import EOS, FILE_SEP, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, log, write_json  # noqa: E402

VALIDATION_SNIPPETS = [
    ("def fibonacci(n):\n    if n < 2:\n        return n\n    ", "\n\nprint(fibonacci(10))\n"),
    ("fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    ", "\n}\n"),
    ("function add(a, b) {\n  ", "\n}\nmodule.exports = { add };\n"),
    ("#include <stdio.h>\n\nint main(void) {\n    ", "\n    return 0;\n}\n"),
]


def graph_io(path: Path) -> dict:
    import onnx
    m = onnx.load(str(path), load_external_data=False)
    ins = {i.name: i.type.tensor_type.elem_type for i in m.graph.input}
    outs = [o.name for o in m.graph.output]
    return {"inputs": ins, "outputs": outs}


def pick(names, *cands, default=""):
    for c in cands:
        if c in names:
            return c
    return default


def write_manifest(out: Path, name: str, cfg: dict, io: dict, onnx_name: str,
                   context_length: int, runtime_threads: int = 0) -> None:
    import onnx
    ins, outs = io["inputs"], io["outputs"]
    past_k = pick(ins, "past_key_values.0.key", "past.0.key", "past_key_values.0.k")
    if not past_k:
        raise SystemExit(f"export: no past key input in graph inputs {sorted(ins)}")
    past_k_fmt = past_k.replace(".0.", ".{layer}.")
    past_v_fmt = past_k_fmt.replace(".key", ".value").replace(".k", ".v") \
        if ".key" in past_k_fmt else past_k_fmt[:-1] + "v"
    pres_k = pick(outs, "present.0.key", "present_key_values.0.key")
    pres_k_fmt = pres_k.replace(".0.", ".{layer}.")
    pres_v_fmt = pres_k_fmt.replace(".key", ".value")
    kv_dtype = "float16" if ins[past_k] == onnx.TensorProto.FLOAT16 else "float32"
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    toml = f"""# moat model manifest (schema: docs/model-manifest.md).
# Written by model-assets/train/export.py from a transformers checkpoint exported with
# onnxruntime-genai's model builder.

[model]
name = "{name}"
onnx = "{onnx_name}"
tokenizer = "tokenizer.json"
context_length = {context_length}

[tokens]
bos = ""
eos = "{EOS}"
stop = ["{EOS}", "{FILE_SEP}"]
fim_prefix = "{FIM_PREFIX}"
fim_suffix = "{FIM_SUFFIX}"
fim_middle = "{FIM_MIDDLE}"
file_separator = "{FILE_SEP}"

[fim]
mode = "spm"

[onnx]
layout = "gqa-shared"
num_layers = {cfg["num_hidden_layers"]}
num_kv_heads = {cfg["num_key_value_heads"]}
head_dim = {head_dim}
kv_dtype = "{kv_dtype}"
input_ids = "{pick(ins, "input_ids")}"
attention_mask = "{pick(ins, "attention_mask")}"
position_ids = "{pick(ins, "position_ids")}"
past_key = "{past_k_fmt}"
past_value = "{past_v_fmt}"
present_key = "{pres_k_fmt}"
present_value = "{pres_v_fmt}"
logits = "{pick(outs, "logits")}"
"""
    if runtime_threads:
        toml += f"""
[runtime]
# Recommended intra-op threads (measured; used when the user leaves threads at 0).
threads = {runtime_threads}
"""
    (out / "model.toml").write_text(toml)


def validate(out: Path, hf: Path, threads: int) -> dict:
    import torch
    from transformers import LlamaForCausalLM
    from ort_runner import OrtModel
    ortm = OrtModel(out, threads=threads)
    model = LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32).eval()
    max_diff, agree, total, rel = 0.0, 0, 0, 0.0
    for prefix, suffix in VALIDATION_SNIPPETS:
        prompt = ortm.fim_prompt(ortm.encode(prefix), ortm.encode(suffix))
        cont = ortm.encode("x = 1\n    y = 2\n")[:6]
        full = prompt + cont
        with torch.no_grad():
            ref = model(torch.tensor([full])).logits[0].numpy()
        for pos, lg in ortm.cached_logits(prompt, cont):
            r = ref[pos]
            max_diff = max(max_diff, float(np.max(np.abs(lg - r))))
            rel = max(rel, float(np.max(np.abs(lg - r)) / (np.max(np.abs(r)) + 1e-9)))
            agree += int(np.argmax(lg) == np.argmax(r))
            total += 1
    # first-token latency for a 512-token prompt (clipped to the context)
    n_prompt = min(512, ortm.context_length - 8)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, ortm.tok.get_vocab_size(), size=n_prompt).tolist()
    ortm.step(ids[:16], ortm.empty_past(), 0)  # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ortm.step(ids, ortm.empty_past(), 0)
        times.append(time.perf_counter() - t0)
    return {"positions_compared": total, "max_abs_logit_diff": round(max_diff, 5),
            "max_rel_logit_diff": round(rel, 5), "top1_agreement": round(agree / total, 4),
            "first_token_ms": {"prompt_tokens": n_prompt, "threads": threads,
                               "median": round(1000 * float(np.median(times)), 1)}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf", type=Path, required=True, help="transformers checkpoint folder")
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--precision", choices=["int4", "int8", "fp32"], default="int8")
    ap.add_argument("--name", default=None)
    ap.add_argument("--context-length", type=int, default=0, help="default: config's "
                    "max_position_embeddings")
    ap.add_argument("--extra", nargs="*", default=[], help="more builder extra_options KEY=VALUE")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runtime-threads", type=int, default=0,
                    help="write [runtime] threads = N into model.toml (the server's default "
                         "threads for this model; measure with `moat bench --threads N`)")
    ap.add_argument("--no-validate", action="store_true")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    out: Path = args.out
    report_path = out / "export_report.json"
    if report_path.exists() and (out / "model.toml").exists() and not args.force:
        log(f"export: {out} exists; skipping (use --force to redo)")
        return
    out.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((args.hf / "config.json").read_text())
    build = out / "_builder"
    if build.exists():
        shutil.rmtree(build)
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(args.hf),
           "-o", str(build), "-p", args.precision, "-e", "cpu", "-c", str(out / "_cache"),
           "--extra_options", "prune_lm_head=true", *args.extra]
    log("export: " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not (build / "model.onnx").exists():
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"export: builder failed ({r.returncode})")
    # one self-contained model.onnx (weights inline) when it fits in a protobuf
    import onnx

    import lm_head_rows
    m = onnx.load(str(build / "model.onnx"), load_external_data=True)
    original = type(m)()
    original.CopyFrom(m)
    lm_head_rows.keep_last_k(m)
    onnx_name = "model.onnx"
    if m.ByteSize() < 1_800_000_000:
        onnx.save_model(m, str(out / onnx_name))
    else:
        onnx.save_model(m, str(out / onnx_name), save_as_external_data=True,
                        location="model.onnx.data")
    shutil.copy(args.hf / "tokenizer.json", out / "tokenizer.json")
    shutil.copy(build / "genai_config.json", out / "genai_config.json")
    io = graph_io(out / onnx_name)
    ctx = args.context_length or int(cfg.get("max_position_embeddings", 2048))
    name = args.name or out.name
    write_manifest(out, name, cfg, io, onnx_name, ctx, args.runtime_threads)
    lm_head = lm_head_rows.check(out, original, m, threads=args.threads)
    del m, original
    shutil.rmtree(build, ignore_errors=True)
    shutil.rmtree(out / "_cache", ignore_errors=True)
    shown = ["python", "-m", "onnxruntime_genai.models.builder", "-i", "HF_DIR", "-o", "OUT",
             "-p", args.precision, "-e", "cpu", "--extra_options", "prune_lm_head=true",
             *args.extra]
    report = {"precision": args.precision, "builder_command": " ".join(shown), "lm_head": lm_head,
              "onnx_bytes": (out / onnx_name).stat().st_size,
              "graph_inputs": sorted(io["inputs"]), "graph_outputs": io["outputs"],
              "config": {k: cfg.get(k) for k in ["hidden_size", "num_hidden_layers",
                                                  "num_attention_heads", "num_key_value_heads",
                                                  "head_dim", "intermediate_size", "vocab_size",
                                                  "max_position_embeddings",
                                                  "tie_word_embeddings"]}}
    if not args.no_validate:
        report["validation"] = validate(out, args.hf, args.threads)
        v = report["validation"]
        log(f"export: ORT vs PyTorch over {v['positions_compared']} positions: max |diff| "
            f"{v['max_abs_logit_diff']} (rel {v['max_rel_logit_diff']}), top-1 agreement "
            f"{v['top1_agreement']:.0%}; first token ({v['first_token_ms']['prompt_tokens']} "
            f"tokens, {args.threads} threads): {v['first_token_ms']['median']} ms")
    write_json(report_path, report)
    log(f"export: wrote {out} ({report['onnx_bytes'] / 1e6:.1f} MB model.onnx)")


if __name__ == "__main__":
    main()
