#!/usr/bin/env python3
"""Import an open-weight code model into moat: a transformers folder or a GGUF file in, a moat
model folder (model.toml + tokenizer.json + ONNX with external data) out.

    python import_model.py SRC --out DIR [--name NAME] [--precision int4|int8|fp32]
                           [--template auto|spm|psm|prefix] [--context-length N]
                           [--sha256 HEX] [--force]

`moat model import` runs this script (from model-assets/train/.venv) and then loads the result.
Steps, each reported on stderr as `[k/n] ...`:
  1. inspect   the source: GGUF magic, header and tensor extents (a truncated file is named as
               such), or a folder's config.json; the architecture must be one the builder exports;
               an expected sha256 (--sha256) is checked before anything else
  2. load      transformers loads it in float32 (a GGUF of any quantization transformers knows is
               dequantized)
  3. tie       input and output embeddings that are (nearly) equal, as in a GGUF of a tied model
               quantized twice, are tied again (the more precise copy is kept), so the builder
               shares one quantized matrix for both (GatherBlockQuantized + MatMulNBits)
  4. export    onnxruntime-genai's model builder (GroupQueryAttention, KV buffer shared between
               past and present) at the chosen precision; its LM head, pruned to the last
               position, then computes the last `logits_to_keep` positions (lm_head_rows.py:
               1 for a prompt, draft length + 1 to verify a speculative draft)
  5. manifest  model.toml from the model's own config and tokenizer: layers, KV heads, head dim,
               context length, EOS and stop tokens, the FIM tokens of the family
               (Qwen2.5-Coder, StarCoder/SantaCoder, DeepSeek-Coder, CodeLlama)
  6. check     logits of the export against the float32 transformers model on a few prompts
               (prefill and cached steps); fails beyond the precision's tolerance; the LM-head
               edit against the unedited graph (K = 1) and an all-rows one (K > 1)
  7. template  the FIM template (SPM, PSM or prefix-only) chosen by next-line exact match on a
               small built-in task set
  8. commit    import.json (source, hash, choices, figures); the folder appears atomically

Everything is written under a temporary sibling of --out that is renamed at the end, so a failed
or interrupted import leaves nothing half-written where moat looks for models. Running it again
on the same source and options is a no-op (import.json holds a key of both). A model imported by
an older version whose only difference is a graph edit (import_version 1: no logits_to_keep) is
upgraded in place in seconds instead of re-imported: a sibling folder of hard links to its files,
the edited model.onnx, model.toml with the [runtime] section (speculation off unless it says
otherwise), the edit's check, a new import.json, then the same rename.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fetch_model import sha256_of  # noqa: E402

# 2: the LM head keeps the last `logits_to_keep` rows (lm_head_rows.py). Versions in UPGRADES
# reach this one by editing model.onnx (`upgrade`), not by a new import.
IMPORT_VERSION = 2
UPGRADES = {1}
STEPS = ["inspect", "load", "tie", "export", "manifest", "check", "template", "commit"]

# Architectures both transformers (GGUF or folder) and onnxruntime-genai's builder handle and whose
# export runs on moat's gqa-shared layout.
SUPPORTED = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "granite": "GraniteForCausalLM",
    "olmo": "OlmoForCausalLM",
}

# The manifest's [runtime] section. Speculative decoding (prompt lookup, verified through the
# logits_to_keep rows) is exact but did not pay on Qwen2.5-Coder-0.5B int4 on 2 cores: a verifying
# pass costs more than a one-token step, and batched int4 rounding makes near ties be recomputed.
RUNTIME = """
[runtime]
# Prompt-lookup speculative decoding: the same output as plain greedy decoding, but measured not
# to pay on Qwen2.5-Coder-0.5B int4 on 2 cores (bench/README.md). `moat bench` measures it for
# this model (its speculation section); true turns it on.
speculative = false
"""

# FIM token families: prefix, suffix, middle, file separator (or None).
FIM_FAMILIES = [
    ("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>"),
    ("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"),
    ("santacoder", "<fim-prefix>", "<fim-suffix>", "<fim-middle>", None),
    ("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", None),
    ("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", None),
]
# Repository-name tokens (Qwen2.5-Coder, StarCoder2): with the file separator they make the
# repository-level prompt format.
REPO_NAME_TOKENS = ["<|repo_name|>", "<repo_name>"]
# Tokens that end a suggestion when the vocabulary has them (besides EOS).
STOP_CANDIDATES = ["<|endoftext|>", "<|im_end|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
                   "<file_sep>", "<|end_of_text|>", "<|eot_id|>", "<｜end▁of▁sentence｜>",
                   "▁<EOT>", "<EOT>", "</s>", "<eos>", "<end_of_turn>"]

TEMPLATES = {
    "spm": "{bos}{fim_prefix}{fim_suffix}{suffix}{fim_middle}{prefix}",
    "psm": "{bos}{fim_prefix}{prefix}{fim_suffix}{suffix}{fim_middle}",
    "prefix": "{bos}{prefix}",
}

# Logit tolerance per precision: top-1 agreement with the float32 model over the compared
# positions, and the largest difference relative to the largest logit.
TOLERANCE = {"fp32": (0.99, 0.01), "int8": (0.85, 0.25), "int4": (0.70, 0.5)}

CHECK_PROMPTS = [
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + ",
    "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    let total: u32 = v.iter()",
    "function add(a, b) {\n  return a + b;\n}\nmodule.exports = { add",
    "#include <stdio.h>\n\nint main(void) {\n    printf(\"hello, %s\\n\", ",
]

# The built-in task set for choosing the FIM template: small, common code in six languages; each
# task blanks one line (the cursor at the line's start) and expects that line back.
TEMPLATE_SOURCES = [
    ("python", '''import os


def read_lines(path):
    with open(path) as f:
        return [line.rstrip("\\n") for line in f]


def count_words(path):
    total = 0
    for line in read_lines(path):
        total += len(line.split())
    return total


if __name__ == "__main__":
    print(count_words(os.sys.argv[1]))
''', [5, 10, 11, 12]),
    ("javascript", '''function groupBy(items, key) {
  const groups = {};
  for (const item of items) {
    const k = item[key];
    if (!groups[k]) {
      groups[k] = [];
    }
    groups[k].push(item);
  }
  return groups;
}

module.exports = { groupBy };
''', [3, 5, 7, 9]),
    ("rust", '''use std::collections::HashMap;

pub fn word_counts(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}
''', [3, 4, 5, 7]),
    ("go", '''package main

import "fmt"

func sum(values []int) int {
	total := 0
	for _, v := range values {
		total += v
	}
	return total
}

func main() {
	fmt.Println(sum([]int{1, 2, 3}))
}
''', [5, 6, 7, 9]),
    ("java", '''public class Stack<T> {
    private final java.util.ArrayList<T> items = new java.util.ArrayList<>();

    public void push(T item) {
        items.add(item);
    }

    public T pop() {
        return items.remove(items.size() - 1);
    }

    public boolean isEmpty() {
        return items.isEmpty();
    }
}
''', [4, 8, 12]),
    ("c", '''#include <string.h>

void reverse(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n / 2; i++) {
        char t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
}
''', [3, 5, 6, 7]),
]


class ImportError_(SystemExit):
    """A clear, user-facing failure: printed as `moat model import: <message>`, exit status 2."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


class Progress:
    def __init__(self):
        self.t0 = time.perf_counter()
        self.step = 0

    def __call__(self, name: str, message: str) -> None:
        self.step = STEPS.index(name) + 1
        elapsed = time.perf_counter() - self.t0
        print(f"[{self.step}/{len(STEPS)}] {name}: {message} ({elapsed:.0f} s)",
              file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        print(f"      {message}", file=sys.stderr, flush=True)


# -- 1. inspect -----------------------------------------------------------------------------------

def inspect_gguf(path: Path) -> dict:
    """Checks a GGUF's magic, header and that every tensor lies inside the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[:4] != b"GGUF":
        raise ImportError_(f"{path} is not a GGUF file (magic {head[:4]!r}, expected b'GGUF')")
    version = struct.unpack("<I", head[4:8])[0]
    if version not in (2, 3):
        raise ImportError_(f"{path}: unsupported GGUF version {version} (2 and 3 are supported)")
    from gguf import GGUFReader
    try:
        reader = GGUFReader(str(path))
    except Exception as e:  # the reader raises many kinds on a cut header
        raise ImportError_(f"{path} is truncated or corrupt (GGUF header unreadable: {e})")
    end = 0
    for t in reader.tensors:
        end = max(end, int(t.data_offset) + int(t.n_bytes))
    if end > size:
        raise ImportError_(f"{path} is truncated: tensors end at byte {end:,}, the file has "
                           f"{size:,} bytes")

    def field(key, default=None):
        f = reader.fields.get(key)
        if f is None:
            return default
        try:
            return f.contents()
        except Exception:
            return default

    arch = field("general.architecture", "?")
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    return {"kind": "gguf", "architecture": arch, "name": field("general.name", ""),
            "file_type": field("general.file_type"), "tensor_types": {
                k: types[k] for k in ("token_embd.weight", "output.weight") if k in types},
            "bytes": size}


def inspect_folder(path: Path) -> dict:
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ImportError_(f"{path} has no config.json: not a transformers model folder")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ImportError_(f"{cfg_path} is not valid JSON: {e}")
    weights = sorted(p.name for p in path.iterdir()
                     if p.suffix in (".safetensors", ".bin") and not p.name.startswith("training"))
    if not weights:
        raise ImportError_(f"{path} has no weights (*.safetensors or pytorch_model*.bin)")
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer.model").is_file():
        raise ImportError_(f"{path} has no tokenizer (tokenizer.json or tokenizer.model)")
    return {"kind": "folder", "architecture": cfg.get("model_type", "?"),
            "name": cfg.get("_name_or_path", path.name), "weights": weights}


def source_key(src: Path, info: dict, args, version: int = IMPORT_VERSION) -> str:
    """What makes two imports the same: the source's identity and the options (and the import
    version, so a new version redoes or upgrades old imports)."""
    h = hashlib.sha256()
    h.update(f"v{version}|{args.precision}|{args.block_size}|{args.template}|"
             f"{args.context_length}".encode())
    files = [src] if src.is_file() else sorted(p for p in src.iterdir() if p.is_file())
    for p in files:
        st = p.stat()
        h.update(f"|{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()


# -- 2./3. load and tie ---------------------------------------------------------------------------

def load_model(src: Path, info: dict):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    kw = {"gguf_file": src.name} if info["kind"] == "gguf" else {}
    where = src.parent if info["kind"] == "gguf" else src
    try:
        tok = AutoTokenizer.from_pretrained(where, **kw)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kw)
    except Exception as e:
        raise ImportError_(f"transformers could not load {src}: {type(e).__name__}: {e}")
    if getattr(model.config, "quantization_config", None) is not None or kw:
        # A GGUF-loaded model is marked quantized and refuses to be saved: move its (now float32)
        # weights into a fresh model of the same config.
        cfg = model.config
        if hasattr(cfg, "quantization_config"):
            del cfg.quantization_config
        state = model.state_dict()
        fresh = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        fresh.load_state_dict(state, strict=False)
        if getattr(fresh.config, "tie_word_embeddings", False) and "lm_head.weight" in state:
            fresh.lm_head.weight = torch.nn.Parameter(state["lm_head.weight"].clone())
            fresh.config.tie_word_embeddings = False
        del model
        model = fresh
    model.eval()
    return model, tok


def quant_rank(ggml_type: str) -> int:
    """How precise a GGML tensor type is (higher is better)."""
    for prefix, rank in (("F32", 100), ("F16", 90), ("BF16", 90), ("Q8", 80), ("Q6", 60),
                         ("Q5", 50), ("IQ4", 40), ("Q4", 40), ("Q3", 30), ("IQ3", 30)):
        if ggml_type.startswith(prefix):
            return rank
    return 10


def tie_embeddings(model, info: dict) -> dict:
    """Ties input and output embeddings when they are (nearly) equal. Returns what it found."""
    import torch
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    if head is None or head.weight is emb or head.weight.data_ptr() == emb.data_ptr():
        return {"tied": bool(getattr(model.config, "tie_word_embeddings", False)),
                "already": True}
    if head.weight.shape != emb.shape:
        return {"tied": False, "reason": "shapes differ"}
    with torch.no_grad():
        diff = float((head.weight - emb).abs().max())
        scale = float(emb.abs().max())
    rel = diff / (scale + 1e-12)
    if rel > 0.05:
        return {"tied": False, "max_abs_diff": diff, "relative": rel}
    # Keep the more precise copy: in a GGUF the output matrix is usually the less quantized one.
    types = info.get("tensor_types", {})
    keep = "output" if quant_rank(types.get("output.weight", "F32")) >= \
        quant_rank(types.get("token_embd.weight", "F32")) else "input"
    with torch.no_grad():
        if keep == "output":
            emb.copy_(head.weight)
    model.config.tie_word_embeddings = True
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().tie_word_embeddings = True
    model.lm_head.weight = emb
    return {"tied": True, "max_abs_diff": round(diff, 6), "relative": round(rel, 6),
            "kept": keep, "types": types}


def save_hf(model, tok, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    if not (out / "tokenizer.json").is_file():
        raise ImportError_("the tokenizer has no fast (tokenizer.json) form; moat needs one")
    return cfg


# -- 4. export ------------------------------------------------------------------------------------

def run_builder(hf: Path, build: Path, precision: str, tied: bool, block_size: int) -> list[str]:
    extra = ["prune_lm_head=true"]
    if tied:
        extra.append("shared_embeddings=true")
    if precision in ("int4", "int8"):
        # int8 activations in MatMulNBits where the CPU has the instructions (VNNI/AVX2), and
        # the quantization block: 128 keeps Qwen2.5-Coder-0.5B's loaded weights at ~460 MB
        # against ~610 MB at the builder's default 32, with the same next-line exact match
        # within noise on 60 held-out Python lines (21.7% / 23.3% / 13.3% for 128 / 64 / 32).
        extra += ["accuracy_level=4", f"block_size={block_size}"]
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf),
           "-o", str(build), "-p", precision, "-e", "cpu", "-c", str(build.parent / "cache"),
           "--extra_options", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not (build / "model.onnx").exists():
        tail = (r.stdout[-3000:] + r.stderr[-3000:]).strip()
        raise ImportError_(f"onnxruntime-genai's builder failed ({r.returncode}):\n{tail}")
    return ["python", "-m", "onnxruntime_genai.models.builder", "-i", "HF", "-o", "OUT",
            "-p", precision, "-e", "cpu", "--extra_options", *extra]


# -- 5. manifest ----------------------------------------------------------------------------------

def vocab_of(tokenizer_json: Path) -> set[str]:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer_json))
    return set(tok.get_vocab(with_added_tokens=True))


def special_tokens(tokenizer_json: Path, hf_tok, cfg: dict) -> dict:
    vocab = vocab_of(tokenizer_json)
    family = next((f for f in FIM_FAMILIES if all(t in vocab for t in f[1:4])), None)
    eos = hf_tok.eos_token if hf_tok.eos_token in vocab else ""
    stops = [eos] if eos else []
    stops += [s for s in STOP_CANDIDATES if s in vocab and s not in stops]
    bos = ""
    if getattr(hf_tok, "add_bos_token", False) and hf_tok.bos_token in vocab:
        bos = hf_tok.bos_token
    out = {"family": family[0] if family else None, "bos": bos, "eos": eos or stops[0],
           "stop": stops}
    if family:
        out.update(fim_prefix=family[1], fim_suffix=family[2], fim_middle=family[3],
                   file_separator=family[4] if family[4] and family[4] in vocab else "")
    # Repository-level context: the layout the model was trained on when its vocabulary has the
    # tokens for it (docs/model-manifest.md, [context]).
    if out.get("file_separator"):
        out["repo_name"] = next((t for t in REPO_NAME_TOKENS if t in vocab), "")
        out["context_format"] = "repository" if out["repo_name"] else "file-separator"
    else:
        out["context_format"] = "comments"
    if not stops:
        raise ImportError_("the tokenizer has no end-of-text token moat could stop at")
    return out


def q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def write_manifest(out: Path, name: str, cfg: dict, io: dict, onnx_name: str, context: int,
                   tokens: dict, template: str, note: str) -> None:
    from export import pick
    ins, outs = io["inputs"], io["outputs"]
    past_k = pick(ins, "past_key_values.0.key", "past.0.key")
    pres_k = pick(outs, "present.0.key", "present_key_values.0.key")
    if not past_k or not pres_k:
        raise ImportError_(f"the export has no KV-cache inputs/outputs ({sorted(ins)})")
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    mode = "psm" if template == "psm" else "spm"
    fim = ""
    for k in ("fim_prefix", "fim_suffix", "fim_middle", "file_separator", "repo_name"):
        if tokens.get(k):
            fim += f"{k} = {q(tokens[k])}\n"
    text = f"""# moat model manifest (schema: docs/model-manifest.md).
# Written by `moat model import` (model-assets/train/import_model.py) {note}

[model]
name = {q(name)}
onnx = {q(onnx_name)}
tokenizer = "tokenizer.json"
context_length = {context}

[tokens]
bos = {q(tokens["bos"])}
eos = {q(tokens["eos"])}
stop = [{", ".join(q(s) for s in tokens["stop"])}]
{fim}
[fim]
# Chosen by measurement on the import's built-in task set (import.json has the figures).
mode = "{mode}"
template = {q(TEMPLATES[template])}

[context]
# How other files of the repository are laid out before the current file's FIM prompt.
format = "{tokens.get("context_format", "comments")}"

[onnx]
layout = "gqa-shared"
num_layers = {cfg["num_hidden_layers"]}
num_kv_heads = {cfg.get("num_key_value_heads", cfg["num_attention_heads"])}
head_dim = {head_dim}
kv_dtype = "float32"
input_ids = "{pick(ins, "input_ids")}"
attention_mask = "{pick(ins, "attention_mask")}"
position_ids = "{pick(ins, "position_ids")}"
past_key = "{past_k.replace(".0.", ".{layer}.")}"
past_value = "{past_k.replace(".0.", ".{layer}.").replace(".key", ".value")}"
present_key = "{pres_k.replace(".0.", ".{layer}.")}"
present_value = "{pres_k.replace(".0.", ".{layer}.").replace(".key", ".value")}"
logits = "{pick(outs, "logits")}"
{RUNTIME}"""
    (out / "model.toml").write_text(text)


def with_runtime(manifest: str) -> str:
    """`manifest` with RUNTIME's section when it has no [runtime] section of its own."""
    if re.search(r"^\[runtime\]", manifest, re.M):
        return manifest
    return manifest.rstrip("\n") + "\n" + RUNTIME


# -- 6. check -------------------------------------------------------------------------------------

def check_logits(folder: Path, model, precision: str, threads: int) -> dict:
    import torch
    from ort_runner import OrtModel
    ortm = OrtModel(folder, threads=threads)
    agree = total = 0
    worst = 0.0
    for text in CHECK_PROMPTS:
        ids = ortm.encode(text)
        prompt, cont = ids[:-4], ids[-4:]
        with torch.no_grad():
            ref = model(torch.tensor([ids])).logits[0].float().numpy()
        for pos, lg in ortm.cached_logits(prompt, cont):
            r = ref[pos]
            worst = max(worst, float(np.max(np.abs(lg - r)) / (np.max(np.abs(r)) + 1e-9)))
            agree += int(np.argmax(lg) == np.argmax(r))
            total += 1
    top1 = agree / total
    need_top1, max_rel = TOLERANCE[precision]
    result = {"positions": total, "top1_agreement": round(top1, 4),
              "max_relative_logit_diff": round(worst, 5),
              "tolerance": {"top1_at_least": need_top1, "relative_diff_at_most": max_rel}}
    if top1 < need_top1 or worst > max_rel:
        raise ImportError_(
            f"the {precision} export does not match the transformers model: top-1 agreement "
            f"{top1:.0%} (need ≥ {need_top1:.0%}), largest relative logit difference {worst:.3f} "
            f"(limit {max_rel})")
    return result


# -- 7. template ----------------------------------------------------------------------------------

def template_tasks() -> list[dict]:
    tasks = []
    for lang, src, lines in TEMPLATE_SOURCES:
        all_lines = src.split("\n")
        for i in lines:
            prefix = "\n".join(all_lines[:i]) + "\n"
            suffix = "\n".join(all_lines[i + 1:])
            tasks.append({"language": lang, "prefix": prefix, "suffix": suffix,
                          "expected": all_lines[i]})
    return tasks


def measure_template(folder: Path, template: str, threads: int) -> dict:
    from eval_nextline import edit_similarity
    from ort_runner import OrtModel
    ortm = OrtModel(folder, threads=threads)
    ortm.template = TEMPLATES[template]
    exact, sim = 0, 0.0
    tasks = template_tasks()
    for t in tasks:
        prompt = ortm.fim_prompt(ortm.encode(t["prefix"]), ortm.encode(t["suffix"]))
        out, _, _ = ortm.generate(prompt, 24, stop_at_newline=True)
        text = ortm.tok.decode(out)
        got = text.lstrip("\n").split("\n")[0].strip()
        want = t["expected"].strip()
        exact += int(got == want)
        sim += edit_similarity(got, want)
    return {"exact_match": round(exact / len(tasks), 4),
            "edit_similarity": round(sim / len(tasks), 4), "tasks": len(tasks)}


def choose_template(folder: Path, tokens: dict, requested: str, threads: int,
                    progress: Progress) -> tuple[str, dict]:
    candidates = ["spm", "psm", "prefix"] if tokens.get("fim_prefix") else ["prefix"]
    if requested != "auto":
        if requested != "prefix" and not tokens.get("fim_prefix"):
            raise ImportError_(f"--template {requested} needs FIM tokens; this tokenizer has none")
        candidates = [requested]
    scores = {}
    for c in candidates:
        scores[c] = measure_template(folder, c, threads)
        progress.note(f"{c}: exact match {scores[c]['exact_match']:.0%}, edit similarity "
                      f"{scores[c]['edit_similarity']:.2f} on {scores[c]['tasks']} tasks")
    best = max(candidates, key=lambda c: (scores[c]["exact_match"], scores[c]["edit_similarity"],
                                          -candidates.index(c)))
    return best, scores


# -- main -----------------------------------------------------------------------------------------

def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "model"


def clean_stale(models: Path) -> None:
    """Cleans up after imports whose process is gone (killed mid-way): removes their temporary
    folders, and puts back a model that was moved aside for its replacement (`.replaced-NAME-PID`)
    when the replacement never arrived, so a kill during the final renames loses at most the new
    import, never the model it was replacing."""
    if not models.is_dir():
        return
    for d in models.iterdir():
        m = re.fullmatch(r"\.(import|replaced)-(.*)-(\d+)", d.name)
        if not m or not d.is_dir():
            continue
        try:
            os.kill(int(m.group(3)), 0)
        except ProcessLookupError:
            target = models / m.group(2)
            if m.group(1) == "replaced" and not target.exists():
                d.rename(target)
            else:
                shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def install(final: Path, out: Path) -> None:
    """Puts the finished model folder `final` at `out`, replacing what is there. Each step is a
    rename; `clean_stale` repairs what a kill between two of them leaves."""
    old = None
    if out.exists():
        old = out.parent / f".replaced-{out.name}-{os.getpid()}"
        out.rename(old)
    final.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def edit_lm_head(onnx_path: Path):
    """The LM-head edit on the builder's model.onnx, in place; returns (original, edited) graphs
    for `lm_head_rows.check`."""
    import lm_head_rows
    tmp = onnx_path.with_name(onnx_path.name + ".edit")
    try:
        changed, original, edited = lm_head_rows.edit_file(onnx_path, tmp)
        if not changed:
            raise ImportError_(f"{onnx_path} already has {lm_head_rows.INPUT}")
        tmp.rename(onnx_path)
    except lm_head_rows.EditError as e:
        raise ImportError_(f"the LM-head edit failed: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return original, edited


def check_lm_head(folder: Path, graphs, threads: int) -> dict:
    import lm_head_rows
    try:
        return lm_head_rows.check(folder, *graphs, threads=threads)
    except lm_head_rows.EditError as e:
        raise ImportError_(f"the LM-head edit does not reproduce the export's logits: {e}") from None


def link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def upgrade(out: Path, old: dict, key: str, threads: int, progress: Progress) -> Path:
    """Brings a model imported by an older version in UPGRADES to this one without importing it
    again: a temporary sibling holds hard links to the model's files (the 271 MB of weights are
    not copied), the edited model.onnx and a new import.json; the edit is checked; `install`
    renames it over the model."""
    import lm_head_rows
    t0 = time.perf_counter()
    progress("export", f"upgrading {out.name} from import version {old.get('import_version')}: "
             "the LM head keeps the last logits_to_keep rows")
    tmp = out.parent / f".import-{out.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for f in out.iterdir():
            if f.name in ("model.onnx", "import.json", "model.toml"):
                continue
            if f.is_dir():
                shutil.copytree(f, tmp / f.name, copy_function=link_or_copy)
            else:
                link_or_copy(f, tmp / f.name)
        try:
            changed, original, edited = lm_head_rows.edit_file(out / "model.onnx",
                                                               tmp / "model.onnx")
        except lm_head_rows.EditError as e:
            raise ImportError_(f"cannot upgrade {out}: {e}; import it again with --force") from None
        (tmp / "model.toml").write_text(with_runtime((out / "model.toml").read_text()))
        report = dict(old)
        if changed:
            progress("check", "the edited LM head against the unedited and the all-rows graphs")
            report["lm_head"] = check_lm_head(tmp, (original, edited), threads)
            progress.note(json.dumps(report["lm_head"]))
        else:
            link_or_copy(out / "model.onnx", tmp / "model.onnx")
        report["key"] = key
        report["import_version"] = IMPORT_VERSION
        report["upgraded"] = {"from_version": old.get("import_version"),
                              "seconds": round(time.perf_counter() - t0, 1)}
        report["files"] = {f.name: f.stat().st_size for f in sorted(tmp.iterdir()) if f.is_file()}
        (tmp / "import.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        progress("commit", f"{out} (upgraded to import version {IMPORT_VERSION})")
        install(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run_import(args) -> Path:
    progress = Progress()
    src: Path = args.src.resolve()
    if not src.exists():
        raise ImportError_(f"{src} does not exist")
    if args.sha256:
        progress("inspect", f"checking the sha256 of {src.name}")
        got = sha256_of(src) if src.is_file() else ""
        if got != args.sha256.lower():
            raise ImportError_(f"hash mismatch for {src}: sha256 {got or '(a folder)'}, "
                               f"expected {args.sha256.lower()}")
    progress("inspect", f"{src}")
    info = inspect_gguf(src) if src.is_file() else inspect_folder(src)
    arch = info["architecture"]
    if arch not in SUPPORTED:
        raise ImportError_(f"unsupported architecture {arch!r} in {src.name} (supported: "
                           f"{', '.join(sorted(SUPPORTED))})")
    if args.out:
        out = args.out.resolve()
    else:
        base = info.get("name") if info["kind"] == "gguf" else src.name
        out = (args.models_dir.resolve() / slug(args.name or base or src.stem))
    clean_stale(out.parent)
    key = source_key(src, info, args)
    if (out / "import.json").is_file() and (out / "model.toml").is_file():
        old = json.loads((out / "import.json").read_text())
        if old.get("key") == key and not args.force:
            progress("commit", f"{out} is up to date (same source and options); nothing to do")
            return out
        version = old.get("import_version")
        if (not args.force and version in UPGRADES
                and old.get("key") == source_key(src, info, args, version)):
            return upgrade(out, old, key, args.threads, progress)
        if not args.force and old.get("source", {}).get("path") != str(src):
            raise ImportError_(f"{out} holds another model ({old.get('source', {}).get('path')});"
                               " use --force to replace it or --name to import beside it")
    name = args.name or out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".import-{out.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    report: dict = {"key": key, "import_version": IMPORT_VERSION, "name": name,
                    "source": {"path": str(src), **info}, "precision": args.precision,
                    "block_size": args.block_size}
    try:
        progress("load", f"{arch} with transformers (float32"
                 f"{', dequantizing the GGUF' if info['kind'] == 'gguf' else ''})")
        model, tok = load_model(src, info)
        progress("tie", "comparing input and output embeddings")
        report["tie"] = tie_embeddings(model, info)
        progress.note(json.dumps(report["tie"]))
        cfg = save_hf(model, tok, tmp / "hf")
        progress("export", f"onnxruntime-genai builder, {args.precision}")
        report["builder_command"] = " ".join(
            run_builder(tmp / "hf", tmp / "build", args.precision, report["tie"]["tied"],
                        args.block_size))
        lm_head_graphs = edit_lm_head(tmp / "build" / "model.onnx")
        final = tmp / "model"
        final.mkdir()
        for f in (tmp / "build").iterdir():
            if f.name in ("model.onnx", "model.onnx.data", "genai_config.json"):
                shutil.move(str(f), final / f.name)
        shutil.copy(tmp / "hf" / "tokenizer.json", final / "tokenizer.json")
        for f in ("tokenizer_config.json", "config.json", "generation_config.json"):
            if (tmp / "hf" / f).is_file():
                shutil.copy(tmp / "hf" / f, final / f)
        progress("manifest", "model.toml from the config and tokenizer")
        from export import graph_io
        io = graph_io(final / "model.onnx")
        tokens = special_tokens(final / "tokenizer.json", tok, cfg)
        context = min(args.context_length, int(cfg.get("max_position_embeddings") or 2048))
        note = f"from {src.name}."
        first = "spm" if tokens.get("fim_prefix") else "prefix"
        write_manifest(final, name, cfg, io, "model.onnx", context, tokens, first, note)
        report["tokens"] = tokens
        report["context_length"] = context
        progress("check", "logits of the export against the float32 model")
        report["logits_check"] = check_logits(final, model, args.precision, args.threads)
        progress.note(f"top-1 agreement {report['logits_check']['top1_agreement']:.0%}, largest "
                      f"relative difference {report['logits_check']['max_relative_logit_diff']}")
        report["lm_head"] = check_lm_head(final, lm_head_graphs, args.threads)
        progress.note(f"LM head, last K rows: {json.dumps(report['lm_head'])}")
        del model
        progress("template", "measuring FIM templates on the built-in tasks")
        best, scores = choose_template(final, tokens, args.template, args.threads, progress)
        report["template"] = {"chosen": best, "scores": scores}
        write_manifest(final, name, cfg, io, "model.onnx", context, tokens, best, note)
        report["files"] = {f.name: f.stat().st_size for f in sorted(final.iterdir())}
        report["seconds"] = round(time.perf_counter() - progress.t0, 1)
        (final / "import.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        progress("commit", f"{out} ({best.upper()} template, {args.precision})")
        install(final, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="transformers model folder or GGUF file")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="model folder to write")
    where.add_argument("--models-dir", type=Path,
                       help="write MODELS_DIR/<name> (name from --name, the GGUF's general.name "
                            "or the folder's name)")
    ap.add_argument("--name", default=None, help="model name in model.toml (default: folder)")
    ap.add_argument("--precision", choices=["int4", "int8", "fp32"], default="int4")
    ap.add_argument("--block-size", type=int, choices=[32, 64, 128, 256], default=128,
                    help="int4/int8 quantization block (smaller: larger and slower model)")
    ap.add_argument("--template", choices=["auto", "spm", "psm", "prefix"], default="auto")
    ap.add_argument("--context-length", type=int, default=2048,
                    help="KV-cache length moat allocates (capped by the model's own)")
    ap.add_argument("--sha256", default="", help="expected sha256 of a GGUF source")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="redo even when up to date")
    args = ap.parse_args(argv)
    try:
        out = run_import(args)
    except ImportError_ as e:
        print(f"moat model import: {e.message}", file=sys.stderr)
        return 2
    print(json.dumps({"model": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
