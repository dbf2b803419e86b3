#!/usr/bin/env python3
"""Write MODEL_CARD.md and results.json into an exported model folder from the pipeline's
reports (corpus summary, curation report, training summary + loss plot, export report, eval).

    python model_card.py --model ../moat-small --work work --preset cpu-small [--eval work/eval.json]

Copies loss.png next to the card. Figures are read, never typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402


def load(p: Path):
    return json.loads(p.read_text()) if p.exists() else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--eval", type=Path, default=None)
    ap.add_argument("--note", default="", help="extra paragraph under the title")
    args = ap.parse_args(argv)
    w, m = args.work, args.model
    corpus = load(w / "corpus" / "summary.json") or {}
    cur = load(w / "curated" / "report.json") or {}
    run = w / "runs" / args.preset
    train = load(run / "summary.json") or {}
    exp = load(m / "export_report.json") or {}
    ev = load(args.eval or w / f"eval-{args.preset}.json") or {}
    tokstats = load(w / "tokenizer" / "stats.json") or {}
    if (run / "loss.png").exists():
        shutil.copy(run / "loss.png", m / "loss.png")
    cfg = exp.get("config", {})
    manifest = (m / "model.toml").read_text()
    name = next((l.split('"')[1] for l in manifest.splitlines() if l.startswith("name")), m.name)
    L = []
    L.append(f"# {name}\n")
    if args.note:
        L.append(args.note + "\n")
    L.append("Trained from scratch by moat's pipeline (`model-assets/train/`, preset "
             f"`{args.preset}`) on source code collected on the build machine. Loaded by moat "
             "through `model.toml` only.\n")
    L.append("## Data\n")
    L.append("| source | files | MB | packages |\n|---|---:|---:|---:|")
    for s, st in sorted(corpus.items()):
        L.append(f"| {s} | {st['files']} | {st['bytes'] / 1e6:.1f} | {st['packages']} |")
    if cur:
        L.append("\nCuration (`curate.py`; each file counted under the first filter that removed it):\n")
        L.append("| filter | files | MB |\n|---|---:|---:|")
        L.append(f"| input | {cur['input_files']} | {cur['input_bytes'] / 1e6:.1f} |")
        for k in ["too_small", "too_large", "license", "vendored", "generated", "long_lines",
                  "minified", "alnum_ratio", "data_like", "exact_dup", "near_dup"]:
            L.append(f"| − {k} | {cur['removed_files'].get(k, 0)} | "
                     f"{cur['removed_bytes'].get(k, 0) / 1e6:.1f} |")
        L.append(f"| **kept** | {cur['kept_files']} | {cur['kept_bytes'] / 1e6:.1f} |")
        L.append(f"\nSecrets scrubbed: {cur['secrets_scrubbed']} in "
                 f"{cur['files_with_secrets_scrubbed']} files.\n")
        L.append("| language | train files | train MB | held-out files | held-out MB |\n|---|---:|---:|---:|---:|")
        sf, sb = cur["split_files"], cur["split_bytes"]
        for l in sorted(set(sf["train"]) | set(sf["eval"])):
            L.append(f"| {l} | {sf['train'].get(l, 0)} | {sb['train'].get(l, 0) / 1e6:.2f} | "
                     f"{sf['eval'].get(l, 0)} | {sb['eval'].get(l, 0) / 1e6:.2f} |")
        L.append(f"\nHeld-out packages ({len(cur['eval_packages'])}): "
                 + ", ".join(f"`{p}`" for p in cur["eval_packages"]) + "\n")
    L.append("## Model\n")
    if cfg:
        L.append(f"Llama (transformers `LlamaForCausalLM`): hidden {cfg['hidden_size']}, "
                 f"{cfg['num_hidden_layers']} layers, {cfg['num_attention_heads']} query / "
                 f"{cfg['num_key_value_heads']} KV heads, head_dim {cfg['head_dim']}, SwiGLU "
                 f"{cfg['intermediate_size']}, RMSNorm, RoPE (θ 10000), context "
                 f"{cfg['max_position_embeddings']}, vocabulary {cfg['vocab_size']} "
                 f"(byte-level BPE, {tokstats.get('chars', 0) / 1e6:.0f} M chars), tied "
                 f"embeddings: {cfg['tie_word_embeddings']}.")
    if train:
        L.append(f"{train['params'] / 1e6:.2f} M parameters "
                 f"({train['non_embedding_params'] / 1e6:.2f} M non-embedding).\n")
        h = train["hyperparameters"]
        L.append("## Training\n")
        L.append(f"Device {train['device']} ({train['torch']}), {train['steps']} steps × "
                 f"{h['micro_batch'] * h['grad_accum']} × {h['seq_len']} tokens = "
                 f"{train['tokens_seen'] / 1e6:.1f} M tokens seen of "
                 f"{train['train_tokens_available'] / 1e6:.1f} M prepared, "
                 f"{train['elapsed_s'] / 60:.1f} min. AdamW (β 0.9/0.95, wd 0.1), peak lr "
                 f"{h['lr']}, {h['warmup']} warmup steps, cosine to 10%, grad clip 1.0. FIM on 50% "
                 "of samples (80% SPM in the server's template, 20% PSM), half of the split "
                 "points line-aligned, 10% with repository context.\n")
        L.append(f"Final train loss {train['final_train_loss']:.3f}, validation loss (held-out "
                 f"packages) {train['final_val_loss']:.3f} nats/token.\n")
        L.append("![loss curve](loss.png)\n")
    if exp:
        v = exp.get("validation", {})
        L.append("## ONNX export\n")
        L.append(f"`{exp['builder_command']}` (onnxruntime-genai model builder; "
                 f"GroupQueryAttention, `gqa-shared` layout), precision {exp['precision']}: "
                 f"model.onnx {exp['onnx_bytes'] / 1e6:.1f} MB.")
        if v:
            L.append(f"ORT vs PyTorch fp32 over {v['positions_compared']} positions (prefill + "
                     f"KV-cache steps): max |Δlogit| {v['max_abs_logit_diff']}, top-1 agreement "
                     f"{v['top1_agreement']:.0%}. First token for a "
                     f"{v['first_token_ms']['prompt_tokens']}-token prompt on "
                     f"{v['first_token_ms']['threads']} threads: "
                     f"{v['first_token_ms']['median']} ms (median of 3, this machine).\n")
    if ev:
        L.append("## Evaluation: next line on held-out packages\n")
        L.append(f"`make_tasks.py` + `eval_nextline.py` (ONNX Runtime, greedy, SPM prompt, "
                 f"prompt ≤ {ev['prompt_token_budget']} tokens, {ev['threads']} threads). "
                 "Cursor after a line's indentation; exact match of the rest of the line.\n")
        L.append("| language | tasks | exact match | edit similarity | empty | p50 ms |\n"
                 "|---|---:|---:|---:|---:|---:|")
        for l, s in [*ev["per_language"].items(), ("**all**", ev["overall"])]:
            if s.get("n"):
                L.append(f"| {l} | {s['n']} | {s['exact_match']:.1%} | "
                         f"{s['edit_similarity']:.3f} | {s['empty_rate']:.1%} | "
                         f"{s['latency_ms_p50']:.0f} |")
        L.append("")
    L.append("## Limits\n")
    L.append("- Small model and little training compute: completions are often wrong or "
             "empty; see the table above. Held-out sets are small for some languages.")
    L.append("- Context is the training sequence length (`context_length` in model.toml).")
    L.append("- Corpus is what was installed on the build machine; licences from package "
             "metadata (see `model-assets/train/`).")
    (m / "MODEL_CARD.md").write_text("\n".join(L) + "\n")
    write_json(m / "results.json", {"corpus": corpus, "curation": cur, "training": train,
                                     "export": exp, "eval": ev})
    print(f"model_card: wrote {m / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
