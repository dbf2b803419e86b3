#!/usr/bin/env python3
"""Generate the two tiny ONNX test models used by moat's tests.

    python3 model-assets/tools/make_test_models.py --out model-assets

Writes, for each of ``tiny-llama`` and ``tiny-gpt2``:
    model.toml       manifest (schema: docs/model-manifest.md)
    tokenizer.json   byte-level BPE, ~2048 tokens, trained on a local code corpus
    model.onnx       fp32, weights inline (no external data), a few MB
    MODEL_CARD.md    what it is / how it was made

The models are NOT trained networks. Their token embedding and lm_head come from a
low-rank (SVD) factorisation of a token *bigram* log-probability table counted over the
corpus, so greedy decoding produces code-looking text. Attention / MLP weights are small
random matrices (std 0.02): they perturb the logits slightly, which makes the KV cache
(and, for tiny-gpt2, the positions) matter numerically without destroying the bigram output.

tiny-llama: the onnxruntime-genai model-builder layout ("gqa-shared"): Llama blocks with
    com.microsoft::GroupQueryAttention (do_rotary=1, cos/sin caches), SimplifiedLayerNormalization
    / SkipSimplifiedLayerNormalization, SwiGLU, no position_ids input.
tiny-gpt2: optimum-style layout ("concat"): GPT-2 blocks in plain ONNX ops, learned absolute
    positions computed inside the graph from the past length, present = Concat(past, new).

Only needs: numpy, onnx, tokenizers (onnxruntime is used by verify_test_models.py).
Deterministic for a given environment (same Python stdlib / cargo registry / node_modules
contents and same library versions): every file list is sorted and all randomness comes
from numpy's default_rng(seed).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

SEED = 1234
VOCAB_SIZE = 2048

# ----------------------------------------------------------------------------------------
# model configurations
# ----------------------------------------------------------------------------------------

LLAMA = dict(
    dir="tiny-llama",
    name="tiny-llama-test",
    family="llama",
    layout="gqa-shared",
    fim_mode="spm",
    specials=dict(
        eos="<|endoftext|>",
        fim_prefix="<|fim_prefix|>",
        fim_middle="<|fim_middle|>",
        fim_suffix="<|fim_suffix|>",
        file_separator="<|file_sep|>",
    ),
    hidden=128,
    layers=2,
    heads=4,
    kv_heads=2,
    head_dim=32,
    intermediate=256,
    context_length=2048,
    rope_theta=10000.0,
    rms_eps=1e-5,
)

GPT2 = dict(
    dir="tiny-gpt2",
    name="tiny-gpt2-test",
    family="gpt2",
    layout="concat",
    fim_mode="psm",
    specials=dict(
        eos="<|endoftext|>",
        fim_prefix="<fim_prefix>",
        fim_middle="<fim_middle>",
        fim_suffix="<fim_suffix>",
        file_separator="<file_sep>",
    ),
    hidden=96,
    layers=2,
    heads=3,
    head_dim=32,
    intermediate=384,
    context_length=1024,
    ln_eps=1e-5,
)

# Special tokens get ids 0..4 in this order.
SPECIAL_ORDER = ["eos", "fim_prefix", "fim_middle", "fim_suffix", "file_separator"]

# ----------------------------------------------------------------------------------------
# corpus
# ----------------------------------------------------------------------------------------

CORPUS_BUDGET = {"python": 4_500_000, "rust": 300_000, "js": 200_000}  # bytes, ~5 MB total
PER_FILE_CAP = {"python": 60_000, "rust": 20_000, "js": 20_000}


def _read_text(p: Path, cap: int) -> str | None:
    try:
        data = p.read_bytes()
    except OSError:
        return None
    if len(data) > 400_000:  # generated tables etc.
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.splitlines()
    if not lines or sum(len(l) for l in lines) / len(lines) > 120:  # minified / data files
        return None
    if len(text) > cap:
        cut = text.rfind("\n", 0, cap)
        text = text[: cut + 1 if cut > 0 else cap]
    return text


def _take(paths: list[Path], budget: int, cap: int, root: Path) -> list[tuple[str, str]]:
    out, used = [], 0
    for p in paths:
        if used >= budget:
            break
        t = _read_text(p, cap)
        if not t or not t.strip():
            continue
        t = t[: budget - used] if used + len(t) > budget else t
        out.append((str(p.relative_to(root)) if root in p.parents else p.name, t))
        used += len(t)
    return out


def collect_corpus() -> list[tuple[str, str]]:
    """Returns [(relative name, text)], deterministic for a given machine."""
    docs: list[tuple[str, str]] = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    # skip tests and data-table packages (encodings/* are codec tables, pydoc_data is prose)
    skip = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__",
            "encodings", "pydoc_data", "idlelib", "turtledemo", "lib2to3", "ensurepip"}
    py = sorted(p for p in stdlib.rglob("*.py") if not skip & set(p.relative_to(stdlib).parts))
    docs += _take(py, CORPUS_BUDGET["python"], PER_FILE_CAP["python"], stdlib)

    reg = Path.home() / ".cargo" / "registry" / "src"
    rs: list[Path] = []
    if reg.is_dir():
        for index in sorted(reg.iterdir()):
            for crate in sorted(index.iterdir()):
                src = crate / "src"
                if src.is_dir():
                    rs += sorted(src.rglob("*.rs"))
    # round-robin-ish diversity: take at most 3 files per crate first
    by_crate: dict[Path, list[Path]] = {}
    for p in rs:
        by_crate.setdefault(p.parents[len(p.relative_to(reg).parts) - 3], []).append(p)
    rs_pick = [p for c in sorted(by_crate) for p in by_crate[c][:3]]
    docs += _take(rs_pick, CORPUS_BUDGET["rust"], PER_FILE_CAP["rust"], reg)

    js: list[Path] = []
    for root in [Path("/usr/lib/node_modules"), Path("/usr/local/lib/node_modules"), reg]:
        if root.is_dir():
            js += sorted(
                p
                for p in root.rglob("*")
                if p.suffix in (".js", ".ts", ".mjs", ".cjs")
                and not p.name.endswith((".d.ts", ".min.js"))
                and p.is_file()
            )
    js = sorted(set(js))
    docs += _take(js, CORPUS_BUDGET["js"], PER_FILE_CAP["js"], Path("/"))
    return docs


# ----------------------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------------------


def train_tokenizer(docs: list[tuple[str, str]], specials: dict[str, str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        special_tokens=[specials[k] for k in SPECIAL_ORDER],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator((t for _, t in docs), trainer=trainer, length=len(docs))
    return tok


# ----------------------------------------------------------------------------------------
# bigram statistics -> embedding / lm_head
# ----------------------------------------------------------------------------------------


def token_stream(
    tok: Tokenizer, docs: list[tuple[str, str]], cfg: dict, rng: np.random.Generator
) -> np.ndarray:
    """The training stream: files as `<file_sep>name\\ncontent<eos>` or as FIM samples
    in the model's FIM mode, `...<eos>`, so the special tokens get sensible bigrams."""
    sp = {k: tok.token_to_id(v) for k, v in cfg["specials"].items()}
    pieces: list[str] = []
    plan = []
    for name, text in docs:
        if rng.random() < 0.5 and len(text) > 200:
            a, b = sorted(rng.integers(0, len(text), size=2).tolist())
            b = min(b, a + 400)
            plan.append(("fim", len(pieces)))
            pieces += [text[:a], text[a:b], text[b:]]
        else:
            plan.append(("file", len(pieces)))
            pieces += [name + "\n", text]
    enc = [e.ids for e in tok.encode_batch(pieces, add_special_tokens=False)]
    out: list[int] = []
    for kind, i in plan:
        if kind == "file":
            out += [sp["file_separator"]] + enc[i] + enc[i + 1] + [sp["eos"]]
        else:
            pre, mid, suf = enc[i], enc[i + 1], enc[i + 2]
            if cfg["fim_mode"] == "spm":
                out += [sp["fim_prefix"], sp["fim_suffix"]] + suf + [sp["fim_middle"]] + pre
            else:
                out += [sp["fim_prefix"]] + pre + [sp["fim_suffix"]] + suf + [sp["fim_middle"]]
            out += mid + [sp["eos"]]
    return np.asarray(out, dtype=np.int64)


def bigram_factors(stream: np.ndarray, V: int, rank: int, k: float = 0.05, temperature: float = 20.0,
                   refine_steps: int = 100, seed: int = SEED):
    """Low-rank factors of the bigram table: T * centre(sqrt(P[prev, next])) ~= E @ W with
    E: [V, rank] (token embedding) and W: [rank, V] (lm_head).

    sqrt(P) rather than log(P): a rank-`rank` fit of the log table spends its capacity on the
    long tail of unseen pairs (argmax agreement ~0.35), sqrt(P) keeps the top of each row
    (agreement ~0.7). Greedy decoding only needs the argmax; `temperature` makes the softmax
    peaked. Row-centring is softmax/argmax invariant. The SVD solution is then refined by a
    few cross-entropy steps (see refine()); E rows end up with unit RMS."""
    counts = np.bincount(stream[:-1] * V + stream[1:], minlength=V * V).reshape(V, V)
    counts = counts.astype(np.float64) + k
    P = counts / counts.sum(axis=1, keepdims=True)
    M = np.sqrt(P)
    M -= M.mean(axis=1, keepdims=True)
    M *= temperature
    # top-`rank` truncated SVD, randomized (Halko et al.) with a fixed seed: a full 2048x2048
    # LAPACK SVD takes 10-20 s on 2 cores, this takes ~1 s and is plenty accurate as a start
    # for refine().
    omega = np.random.default_rng(seed).normal(size=(M.shape[1], rank + 32))
    Y = M @ omega
    for _ in range(4):
        Y, _ = np.linalg.qr(Y)
        Y = M @ (M.T @ Y)
    Qb, _ = np.linalg.qr(Y)
    Ub, S, Vt = np.linalg.svd(Qb.T @ M, full_matrices=False)
    U, S, Vt = (Qb @ Ub)[:, :rank], S[:rank], Vt[:rank]
    # fix the sign ambiguity so the result does not depend on LAPACK's choice
    sign = np.sign(U[np.abs(U).argmax(axis=0), np.arange(rank)])
    U, Vt = U * sign, Vt * sign[:, None]
    E = U * np.sqrt(S)
    W = np.sqrt(S)[:, None] * Vt
    m = np.sqrt((E**2).mean(axis=1)).mean()
    E, W = E / m, W * m
    freq = counts.sum(axis=1) - k * V
    target = P.argmax(axis=1)

    def agreement(E, W):
        # what the graph computes from the token alone: the final norm rescales E rows
        N = E / np.sqrt((E**2).mean(axis=1, keepdims=True) + 1e-5)
        return float(((N @ W).argmax(1) == target) @ freq / freq.sum())

    stats = dict(tokens=int(stream.size), rank=rank, argmax_agreement_svd=agreement(E, W))
    E, W = refine(E, W, P, freq, steps=refine_steps)
    stats["argmax_agreement_weighted"] = agreement(E, W)
    return E, W, stats


def refine(E, W, P, freq, steps: int, lr: float = 0.01):
    """A few Adam steps on the frequency-weighted cross-entropy between P(next | prev) and
    softmax(norm(E[prev]) @ W), starting from the SVD solution. norm() is the RMS
    normalisation the final norm layer applies, so afterwards the graph's token-only logits
    are exactly this fit. Raises low-rank greedy (argmax) agreement from ~0.68 to ~0.98."""
    E, W = E.astype(np.float32), W.astype(np.float32)
    Pf = P.astype(np.float32)
    wf = (freq / freq.sum()).astype(np.float32)[:, None]
    params = [E, W]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    b1, b2 = 0.9, 0.999
    for it in range(1, steps + 1):
        r = np.sqrt((E**2).mean(axis=1, keepdims=True) + 1e-5)
        N = E / r
        Z = N @ W
        Z -= Z.max(axis=1, keepdims=True)
        Qp = np.exp(Z)
        Qp /= Qp.sum(axis=1, keepdims=True)
        G = (Qp - Pf) * wf  # d loss / d logits
        gN = G @ W.T
        gW = N.T @ G
        gE = (gN - N * (gN * N).mean(axis=1, keepdims=True)) / r
        for p, g, a, b in zip(params, (gE, gW), m1, m2):
            a *= b1
            a += (1 - b1) * g
            b *= b2
            b += (1 - b2) * g * g
            p -= lr * (a / (1 - b1**it)) / (np.sqrt(b / (1 - b2**it)) + 1e-8)
    E = E / np.sqrt((E**2).mean(axis=1, keepdims=True) + 1e-5)  # unit-RMS rows, as the norm sees them
    return E.astype(np.float64), W.astype(np.float64)


# ----------------------------------------------------------------------------------------
# ONNX helpers
# ----------------------------------------------------------------------------------------


class G:
    """Tiny graph-building helper."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const_i64(self, name: str, vals, scalar=False) -> str:
        a = np.array(vals, dtype=np.int64)
        return self.init(name, a.reshape(()) if scalar else a.reshape(-1))

    def op(self, op_type, inputs, name, outputs=None, n_out=1, domain=None, **attrs):
        if outputs is None:
            outputs = [f"{name}/output_{i}" for i in range(n_out)]
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=name, domain=domain, **attrs)
        )
        return outputs[0] if len(outputs) == 1 else outputs


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def save_model(graph, path: Path, opsets: dict[str, int], doc: str):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        producer_name="moat make_test_models.py",
        doc_string=doc,
    )
    model.ir_version = 10
    onnx.save(model, str(path))  # small enough: weights inline, no external data


# ----------------------------------------------------------------------------------------
# tiny-llama: onnxruntime-genai builder layout (GroupQueryAttention, shared KV buffer)
# ----------------------------------------------------------------------------------------


def build_llama(cfg: dict, E: np.ndarray, W: np.ndarray, rng: np.random.Generator, path: Path):
    V, H, nL = E.shape[0], cfg["hidden"], cfg["layers"]
    nh, nkv, hd, I = cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["intermediate"]
    max_len = cfg["context_length"]
    std = 0.02
    g = G()

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info(
            "attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]
        ),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", V])
    ]
    for i in range(nL):
        for kv in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kv}",
                    TensorProto.FLOAT,
                    ["batch_size", nkv, "past_sequence_length", hd],
                )
            )
            outputs.append(
                helper.make_tensor_value_info(
                    f"present.{i}.{kv}",
                    TensorProto.FLOAT,
                    ["batch_size", nkv, "total_sequence_length", hd],
                )
            )

    # --- attention-mask reformatting, as the genai builder does it
    p = "/model/attn_mask_reformat/attn_mask_subgraph"
    one = g.const_i64(f"{p}/one", 1, scalar=True)
    axis1 = g.const_i64(f"{p}/axes_1", [1])
    rs = g.op("ReduceSum", ["attention_mask", axis1], f"{p}/ReduceSum", keepdims=0)
    sub = g.op("Sub", [rs, one], f"{p}/Sub")
    seqlens_k = g.op("Cast", [sub], f"{p}/Sub/Cast", outputs=[f"{p}/seqlens_k"], to=TensorProto.INT32)
    shp = g.op("Shape", ["attention_mask"], f"{p}/Shape")
    tot = g.op("Gather", [shp, one], f"{p}/Gather", axis=0)
    total_len = g.op("Cast", [tot], f"{p}/Gather/Cast", outputs=[f"{p}/total_seq_len"], to=TensorProto.INT32)

    # --- rotary caches [max_len, head_dim/2], non-interleaved (HF rotate_half)
    inv_freq = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    ang = np.arange(max_len, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos_cache = g.init("cos_cache", f32(np.cos(ang)))
    sin_cache = g.init("sin_cache", f32(np.sin(ang)))

    emb = g.init("model.embed_tokens.weight", f32(E))
    x = g.op("Gather", [emb, "input_ids"], "/model/embed_tokens/Gather")
    residual = x
    eps = cfg["rms_eps"]
    ones = f32(np.ones(H))

    pending = None  # output of previous block to be added to the residual
    for i in range(nL):
        lp = f"/model/layers.{i}"
        wn = g.init(f"model.layers.{i}.input_layernorm.weight", ones)
        if pending is None:
            n1 = g.op("SimplifiedLayerNormalization", [residual, wn], f"{lp}/input_layernorm/LayerNorm",
                      axis=-1, epsilon=eps, stash_type=1)
        else:
            n1, _, _, residual = g.op(
                "SkipSimplifiedLayerNormalization", [pending, residual, wn],
                f"{lp}/input_layernorm/SkipLayerNorm",
                outputs=[f"{lp}/input_layernorm/output_0", "", "", f"{lp}/input_layernorm/output_3"],
                domain="com.microsoft", epsilon=eps,
            )
        wq = g.init(f"model.layers.{i}.attn.q_proj.MatMul.weight", f32(rng.normal(0, std, (H, nh * hd))))
        wk = g.init(f"model.layers.{i}.attn.k_proj.MatMul.weight", f32(rng.normal(0, std, (H, nkv * hd))))
        wv = g.init(f"model.layers.{i}.attn.v_proj.MatMul.weight", f32(rng.normal(0, std, (H, nkv * hd))))
        wo = g.init(f"model.layers.{i}.attn.o_proj.MatMul.weight", f32(rng.normal(0, std, (nh * hd, H))))
        q = g.op("MatMul", [n1, wq], f"{lp}/attn/q_proj/MatMul")
        k = g.op("MatMul", [n1, wk], f"{lp}/attn/k_proj/MatMul")
        v = g.op("MatMul", [n1, wv], f"{lp}/attn/v_proj/MatMul")
        attn = g.op(
            "GroupQueryAttention",
            [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value",
             seqlens_k, total_len, cos_cache, sin_cache],
            f"{lp}/attn/GroupQueryAttention",
            outputs=[f"{lp}/attn/GroupQueryAttention/output_0", f"present.{i}.key", f"present.{i}.value"],
            domain="com.microsoft",
            num_heads=nh, kv_num_heads=nkv, scale=float(1.0 / np.sqrt(hd)),
            local_window_size=-1, softcap=0.0, do_rotary=1, rotary_interleaved=0,
        )[0]
        o = g.op("MatMul", [attn, wo], f"{lp}/attn/o_proj/MatMul")

        wn2 = g.init(f"model.layers.{i}.post_attention_layernorm.weight", ones)
        n2, _, _, residual = g.op(
            "SkipSimplifiedLayerNormalization", [o, residual, wn2],
            f"{lp}/post_attention_layernorm/SkipLayerNorm",
            outputs=[f"{lp}/post_attention_layernorm/output_0", "", "",
                     f"{lp}/post_attention_layernorm/output_3"],
            domain="com.microsoft", epsilon=eps,
        )
        wg = g.init(f"model.layers.{i}.mlp.gate_proj.MatMul.weight", f32(rng.normal(0, std, (H, I))))
        wu = g.init(f"model.layers.{i}.mlp.up_proj.MatMul.weight", f32(rng.normal(0, std, (H, I))))
        wd = g.init(f"model.layers.{i}.mlp.down_proj.MatMul.weight", f32(rng.normal(0, std, (I, H))))
        gate = g.op("MatMul", [n2, wg], f"{lp}/mlp/gate_proj/MatMul")
        sig = g.op("Sigmoid", [gate], f"{lp}/mlp/act_fn/Sigmoid")
        silu = g.op("Mul", [gate, sig], f"{lp}/mlp/act_fn/Mul")
        up = g.op("MatMul", [n2, wu], f"{lp}/mlp/up_proj/MatMul")
        prod = g.op("Mul", [silu, up], f"{lp}/mlp/Mul")
        pending = g.op("MatMul", [prod, wd], f"{lp}/mlp/down_proj/MatMul")

    wf = g.init("model.norm.weight", ones)
    nf, _, _, _ = g.op(
        "SkipSimplifiedLayerNormalization", [pending, residual, wf], "/model/norm/SkipLayerNorm",
        outputs=["/model/norm/output_0", "", "", "/model/norm/output_3"],
        domain="com.microsoft", epsilon=eps,
    )
    lm = g.init("lm_head.MatMul.weight", f32(W))
    g.op("MatMul", [nf, lm], "/lm_head/MatMul", outputs=["logits"])

    graph = helper.make_graph(g.nodes, "tiny_llama", inputs, outputs, g.inits)
    save_model(graph, path, {"": 21, "com.microsoft": 1},
               "tiny-llama test model (onnxruntime-genai builder layout, GroupQueryAttention). Tests only.")


# ----------------------------------------------------------------------------------------
# tiny-gpt2: optimum-style layout (plain ops, present = concat(past, new))
# ----------------------------------------------------------------------------------------


def build_gpt2(cfg: dict, E: np.ndarray, W: np.ndarray, rng: np.random.Generator, path: Path):
    V, H, nL = E.shape[0], cfg["hidden"], cfg["layers"]
    nh, hd, I = cfg["heads"], cfg["head_dim"], cfg["intermediate"]
    max_pos = cfg["context_length"]
    std = 0.02
    eps = cfg["ln_eps"]
    g = G()

    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info(
            "attention_mask", TensorProto.INT64, ["batch_size", "past_sequence_length + sequence_length"]
        ),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", V])
    ]
    for i in range(nL):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.{kv}", TensorProto.FLOAT,
                ["batch_size", nh, "past_sequence_length", hd]))
            outputs.append(helper.make_tensor_value_info(
                f"present.{i}.{kv}", TensorProto.FLOAT,
                ["batch_size", nh, "past_sequence_length + sequence_length", hd]))

    c0 = g.const_i64("const_0", [0])
    c1 = g.const_i64("const_1", [1])
    c2 = g.const_i64("const_2", [2])
    c3 = g.const_i64("const_3", [3])
    s0 = g.const_i64("const_0_scalar", 0, scalar=True)
    s1 = g.const_i64("const_1_scalar", 1, scalar=True)

    # past_len (scalar) from past_key_values.0.key, seq_len (scalar) from input_ids
    pshape = g.op("Shape", ["past_key_values.0.key"], "/model/past_len/Shape", start=2, end=3)
    past_len = g.op("Squeeze", [pshape, c0], "/model/past_len/Squeeze")
    ishape = g.op("Shape", ["input_ids"], "/model/seq_len/Shape", start=1, end=2)
    seq_len = g.op("Squeeze", [ishape, c0], "/model/seq_len/Squeeze")
    total = g.op("Add", [past_len, seq_len], "/model/total_len/Add")

    # position embeddings for positions past_len .. past_len+seq_len-1, i.e. wpe[past_len:total].
    # Written as a Slice: Gather(wpe, Range(past_len, total, 1)) is what exporters emit, but
    # onnxruntime 1.32's GatherToSliceFusion (ENABLE_EXTENDED and up) rewrites that pattern
    # into a Slice that fails at run time ("Starts and steps shape mismatch").
    total_1d = g.op("Add", [pshape, ishape], "/model/total_len_1d/Add")
    wte = g.init("transformer.wte.weight", f32(E))
    wpe = g.init("transformer.wpe.weight", f32(rng.normal(0, std, (max_pos, H))))
    tok_emb = g.op("Gather", [wte, "input_ids"], "/model/wte/Gather")
    pos_emb = g.op("Slice", [wpe, pshape, total_1d, c0], "/model/wpe/Slice")
    x = g.op("Add", [tok_emb, pos_emb], "/model/embed/Add")

    # additive-free boolean mask [B, 1, S, T]: causal (key j <= past_len + i) AND attention_mask
    kidx = g.op("Range", [s0, total, s1], "/model/mask/key_range")
    qidx0 = g.op("Range", [s0, seq_len, s1], "/model/mask/query_range")
    qidx = g.op("Add", [qidx0, past_len], "/model/mask/query_pos")
    qcol = g.op("Unsqueeze", [qidx, c1], "/model/mask/query_col")  # [S,1]
    causal = g.op("LessOrEqual", [kidx, qcol], "/model/mask/causal")  # [S,T]
    am_b = g.op("Cast", ["attention_mask"], "/model/mask/am_bool", to=TensorProto.BOOL)
    am4 = g.op("Unsqueeze", [am_b, g.const_i64("const_1_2", [1, 2])], "/model/mask/am_4d")  # [B,1,1,T]
    mask = g.op("And", [causal, am4], "/model/mask/And")  # [B,1,S,T]
    neg = g.init("const_neg_large", f32(np.finfo(np.float32).min))

    shape_bshd = g.const_i64("shape_bshd", [0, 0, nh, hd])
    shape_bsh = g.const_i64("shape_bsh", [0, 0, nh * hd])
    scale = g.init("const_attn_scale", f32(1.0 / np.sqrt(hd)))
    ln_ones, ln_zeros = f32(np.ones(H)), f32(np.zeros(H))

    for i in range(nL):
        lp = f"/model/h.{i}"
        ln1 = g.op("LayerNormalization",
                   [x, g.init(f"transformer.h.{i}.ln_1.weight", ln_ones),
                    g.init(f"transformer.h.{i}.ln_1.bias", ln_zeros)],
                   f"{lp}/ln_1/LayerNormalization", axis=-1, epsilon=eps)
        w_attn = g.init(f"transformer.h.{i}.attn.c_attn.weight", f32(rng.normal(0, std, (H, 3 * H))))
        b_attn = g.init(f"transformer.h.{i}.attn.c_attn.bias", f32(rng.normal(0, std, (3 * H,))))
        qkv = g.op("Add", [g.op("MatMul", [ln1, w_attn], f"{lp}/attn/c_attn/MatMul"), b_attn],
                   f"{lp}/attn/c_attn/Add")
        q, k, v = g.op("Split", [qkv, g.const_i64(f"{lp}/attn/split", [H, H, H])],
                       f"{lp}/attn/Split", n_out=3, axis=2)

        def heads(t, nm):
            r = g.op("Reshape", [t, shape_bshd], f"{lp}/attn/{nm}/Reshape")
            return g.op("Transpose", [r], f"{lp}/attn/{nm}/Transpose", perm=[0, 2, 1, 3])

        qh, kh, vh = heads(q, "q"), heads(k, "k"), heads(v, "v")
        pk = g.op("Concat", [f"past_key_values.{i}.key", kh], f"{lp}/attn/present_key/Concat",
                  outputs=[f"present.{i}.key"], axis=2)
        pv = g.op("Concat", [f"past_key_values.{i}.value", vh], f"{lp}/attn/present_value/Concat",
                  outputs=[f"present.{i}.value"], axis=2)
        kt = g.op("Transpose", [pk], f"{lp}/attn/kT", perm=[0, 1, 3, 2])
        sc = g.op("Mul", [g.op("MatMul", [qh, kt], f"{lp}/attn/qk/MatMul"), scale], f"{lp}/attn/qk/Scale")
        sc = g.op("Where", [mask, sc, neg], f"{lp}/attn/mask/Where")
        pr = g.op("Softmax", [sc], f"{lp}/attn/Softmax", axis=-1)
        ctx = g.op("MatMul", [pr, pv], f"{lp}/attn/pv/MatMul")  # [B,nh,S,hd]
        ctx = g.op("Transpose", [ctx], f"{lp}/attn/ctx/Transpose", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, shape_bsh], f"{lp}/attn/ctx/Reshape")
        w_o = g.init(f"transformer.h.{i}.attn.c_proj.weight",
                     f32(rng.normal(0, std / np.sqrt(2 * nL), (H, H))))
        b_o = g.init(f"transformer.h.{i}.attn.c_proj.bias", f32(np.zeros(H)))
        a_out = g.op("Add", [g.op("MatMul", [ctx, w_o], f"{lp}/attn/c_proj/MatMul"), b_o],
                     f"{lp}/attn/c_proj/Add")
        x = g.op("Add", [x, a_out], f"{lp}/attn/residual/Add")

        ln2 = g.op("LayerNormalization",
                   [x, g.init(f"transformer.h.{i}.ln_2.weight", ln_ones),
                    g.init(f"transformer.h.{i}.ln_2.bias", ln_zeros)],
                   f"{lp}/ln_2/LayerNormalization", axis=-1, epsilon=eps)
        w_fc = g.init(f"transformer.h.{i}.mlp.c_fc.weight", f32(rng.normal(0, std, (H, I))))
        b_fc = g.init(f"transformer.h.{i}.mlp.c_fc.bias", f32(np.zeros(I)))
        h1 = g.op("Add", [g.op("MatMul", [ln2, w_fc], f"{lp}/mlp/c_fc/MatMul"), b_fc], f"{lp}/mlp/c_fc/Add")
        # gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = g.op("Mul", [g.op("Mul", [h1, h1], f"{lp}/mlp/gelu/sq"), h1], f"{lp}/mlp/gelu/cube")
        inner = g.op("Add", [h1, g.op("Mul", [x3, g.init(f"{lp}/gelu_c", f32(0.044715))], f"{lp}/mlp/gelu/c3")],
                     f"{lp}/mlp/gelu/inner")
        th = g.op("Tanh", [g.op("Mul", [inner, g.init(f"{lp}/gelu_k", f32(np.sqrt(2.0 / np.pi)))],
                                f"{lp}/mlp/gelu/scaled")], f"{lp}/mlp/gelu/Tanh")
        half = g.op("Mul", [h1, g.init(f"{lp}/gelu_half", f32(0.5))], f"{lp}/mlp/gelu/half")
        gel = g.op("Mul", [half, g.op("Add", [th, g.init(f"{lp}/gelu_one", f32(1.0))], f"{lp}/mlp/gelu/one_plus")],
                   f"{lp}/mlp/gelu/out")
        w_p = g.init(f"transformer.h.{i}.mlp.c_proj.weight", f32(rng.normal(0, std / np.sqrt(2 * nL), (I, H))))
        b_p = g.init(f"transformer.h.{i}.mlp.c_proj.bias", f32(np.zeros(H)))
        m_out = g.op("Add", [g.op("MatMul", [gel, w_p], f"{lp}/mlp/c_proj/MatMul"), b_p], f"{lp}/mlp/c_proj/Add")
        x = g.op("Add", [x, m_out], f"{lp}/mlp/residual/Add")

    lnf = g.op("LayerNormalization",
               [x, g.init("transformer.ln_f.weight", ln_ones), g.init("transformer.ln_f.bias", ln_zeros)],
               "/model/ln_f/LayerNormalization", axis=-1, epsilon=eps)
    g.op("MatMul", [lnf, g.init("lm_head.weight", f32(W))], "/lm_head/MatMul", outputs=["logits"])

    graph = helper.make_graph(g.nodes, "tiny_gpt2", inputs, outputs, g.inits)
    save_model(graph, path, {"": 17}, "tiny-gpt2 test model (optimum-style concat KV layout). Tests only.")
    onnx.checker.check_model(str(path), full_check=True)


# ----------------------------------------------------------------------------------------
# manifest / model card
# ----------------------------------------------------------------------------------------


def q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_manifest(cfg: dict, d: Path):
    sp = cfg["specials"]
    nkv = cfg.get("kv_heads", cfg["heads"])
    stop = [sp["eos"], sp["file_separator"]]
    text = f"""# moat model manifest (schema: docs/model-manifest.md).
# Generated by model-assets/tools/make_test_models.py -- TEST MODEL, not for real use.

[model]
name = {q(cfg["name"])}
onnx = "model.onnx"
tokenizer = "tokenizer.json"
context_length = {cfg["context_length"]}

[tokens]
bos = ""
eos = {q(sp["eos"])}
stop = [{", ".join(q(s) for s in stop)}]
fim_prefix = {q(sp["fim_prefix"])}
fim_suffix = {q(sp["fim_suffix"])}
fim_middle = {q(sp["fim_middle"])}
file_separator = {q(sp["file_separator"])}

[fim]
mode = {q(cfg["fim_mode"])}

[onnx]
layout = {q(cfg["layout"])}
num_layers = {cfg["layers"]}
num_kv_heads = {nkv}
head_dim = {cfg["head_dim"]}
kv_dtype = "float32"
input_ids = "input_ids"
attention_mask = "attention_mask"
position_ids = ""
past_key = "past_key_values.{{layer}}.key"
past_value = "past_key_values.{{layer}}.value"
present_key = "present.{{layer}}.key"
present_value = "present.{{layer}}.value"
logits = "logits"
"""
    (d / "model.toml").write_text(text)


def write_card(cfg: dict, d: Path, stats: dict, corpus_info: dict):
    sp = cfg["specials"]
    if cfg["family"] == "llama":
        arch = (
            f"Llama-style decoder: hidden {cfg['hidden']}, {cfg['layers']} layers, {cfg['heads']} query heads, "
            f"{cfg['kv_heads']} KV heads, head_dim {cfg['head_dim']}, SwiGLU intermediate {cfg['intermediate']}, "
            f"RMSNorm (SimplifiedLayerNormalization / com.microsoft SkipSimplifiedLayerNormalization), "
            f"rotary embeddings inside com.microsoft GroupQueryAttention (do_rotary=1, theta "
            f"{cfg['rope_theta']:g}, cos/sin caches [{cfg['context_length']}, {cfg['head_dim'] // 2}]).\n"
            f"Graph layout mirrors `onnxruntime_genai.models.builder` for CPU fp32 (manifest layout "
            f"`gqa-shared`): no position_ids input, seqlens_k / total_sequence_length derived from "
            f"attention_mask, one KV buffer per layer may be bound as both past and present."
        )
    else:
        arch = (
            f"GPT-2-style decoder: hidden {cfg['hidden']}, {cfg['layers']} layers, {cfg['heads']} heads, "
            f"head_dim {cfg['head_dim']}, GELU (tanh) MLP {cfg['intermediate']}, LayerNorm with bias, "
            f"learned absolute position embeddings ({cfg['context_length']}) indexed inside the graph by "
            f"past_len + arange(seq). Plain ONNX ops (opset 17); present = Concat(past, new) "
            f"(manifest layout `concat`, optimum-style), no position_ids input."
        )
    text = f"""# {cfg['name']} ({cfg['dir']})

**For tests only.** This is not a trained language model and must never be used for real
completions. It exists so that moat's tests can exercise the full ONNX Runtime / tokenizer /
FIM / KV-cache path with a file of a few MB.

## What it is

{arch}

Vocabulary: {VOCAB_SIZE} tokens, byte-level BPE (`tokenizers` ByteLevel pre-tokenizer,
add_prefix_space=false, use_regex=true; ByteLevel decoder). Special tokens (ids 0-4):
`{sp['eos']}`, `{sp['fim_prefix']}`, `{sp['fim_middle']}`, `{sp['fim_suffix']}`, `{sp['file_separator']}`.
FIM mode: `{cfg['fim_mode']}`.

## How it was made

Generated by `model-assets/tools/make_test_models.py` (seed {SEED}); check with
`model-assets/tools/verify_test_models.py`.

1. Corpus: ~5 MB of local source code ({corpus_info['files']} files: Python stdlib `*.py`,
   Rust sources from the cargo registry, JS/TS files found locally), file lists sorted.
   Corpus sha256 `{corpus_info['sha256'][:16]}...` ({corpus_info['bytes']} bytes).
2. Tokenizer: BPE trained on that corpus.
3. Token bigram counts over the tokenized corpus ({stats['tokens']} tokens; files as
   `{sp['file_separator']}name\\ncontent{sp['eos']}`, half of them as {cfg['fim_mode'].upper()} FIM samples),
   add-k smoothing, M = 20 * row-centred sqrt(P(next | prev)), rank-{stats['rank']} (randomized) SVD
   M ~= U S Vt; token embedding = U sqrt(S), lm_head = sqrt(S) Vt (rescaled so embeddings
   have unit mean RMS). Then 100 Adam steps on the frequency-weighted cross-entropy of
   softmax(rmsnorm(E[prev]) W) against P(next | prev), starting from the SVD solution.
   Greedy (argmax) agreement with the full bigram table, token-frequency weighted:
   {stats['argmax_agreement_svd']:.3f} after the SVD, {stats['argmax_agreement_weighted']:.3f} after refinement.{stats.get('extra', '')}
4. Attention/MLP projections: random normal, std 0.02{' (GPT-2 style: output projections std 0.02/sqrt(2*layers), c_attn bias std 0.02, position embeddings std 0.02)' if cfg['family'] == 'gpt2' else ''};
   norms have weight 1 (bias 0). They perturb the logits slightly so the KV cache
   {'and the positions matter' if cfg['family'] == 'gpt2' else 'matters'} numerically.

Greedy output therefore looks like code token-by-token (it is essentially a bigram model)
but is meaningless.
"""
    (d / "MODEL_CARD.md").write_text(text)


# ----------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1]),
                    help="output folder (default: model-assets/)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--only", choices=["tiny-llama", "tiny-gpt2"], default=None)
    args = ap.parse_args()

    t0 = time.time()
    out = Path(args.out)
    docs = collect_corpus()
    h = hashlib.sha256()
    for name, text in docs:
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    corpus_info = dict(files=len(docs), bytes=sum(len(t.encode()) for _, t in docs), sha256=h.hexdigest())
    print(f"corpus: {corpus_info['files']} files, {corpus_info['bytes']} bytes, sha256 {corpus_info['sha256'][:16]}",
          flush=True)

    for cfg in (LLAMA, GPT2):
        if args.only and args.only != cfg["dir"]:
            continue
        d = out / cfg["dir"]
        d.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        tok = train_tokenizer(docs, cfg["specials"])
        V = tok.get_vocab_size()
        for i, k in enumerate(SPECIAL_ORDER):
            assert tok.token_to_id(cfg["specials"][k]) == i, (k, tok.token_to_id(cfg["specials"][k]))
        tok.save(str(d / "tokenizer.json"))

        stream = token_stream(tok, docs, cfg, rng)
        # gpt2: final LayerNorm subtracts the per-row mean, so build rank-(H-1) factors and
        # rotate them into the H-1 dim subspace orthogonal to the all-ones vector.
        H = cfg["hidden"]
        if cfg["family"] == "gpt2":
            E, W, stats = bigram_factors(stream, V, H - 1, seed=args.seed)
            basis = np.linalg.qr(np.concatenate([np.ones((H, 1)), rng.normal(size=(H, H - 1))], axis=1))[0]
            Q = basis[:, 1:].T  # [H-1, H], rows orthonormal and orthogonal to ones
            E, W = E @ Q, Q.T @ W
            stats["extra"] = (
                f"\n   The rank-{H - 1} factors are then rotated into the {H - 1}-dim subspace of R^{H} orthogonal"
                "\n   to the all-ones vector, so the final LayerNorm's mean subtraction leaves the logits unchanged."
            )
            build_gpt2(cfg, E, W, rng, d / "model.onnx")
        else:
            E, W, stats = bigram_factors(stream, V, H, seed=args.seed)
            build_llama(cfg, E, W, rng, d / "model.onnx")
        write_manifest(cfg, d)
        write_card(cfg, d, stats, corpus_info)
        size = (d / "model.onnx").stat().st_size
        print(f"{cfg['dir']}: vocab {V}, {stats['tokens']} bigram tokens, low-rank argmax agreement "
              f"{stats['argmax_agreement_weighted']:.3f}, model.onnx {size / 1e6:.2f} MB "
              f"[{time.time() - t0:.1f}s]", flush=True)


if __name__ == "__main__":
    sys.exit(main())
