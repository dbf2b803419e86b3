#!/usr/bin/env python3
"""Check the tiny test models with onnxruntime (Python).

    python3 model-assets/tools/verify_test_models.py [--dir model-assets]

For each model folder (tiny-llama, tiny-gpt2) it
  * reads model.toml / tokenizer.json and checks the manifest's token strings exist,
  * prints the session's input/output names, dtypes and shapes,
  * compares a full pass against an independent numpy implementation of the architecture,
  * checks the KV cache path:
      tiny-llama (gqa-shared): one preallocated [1, kv_heads, context_length, head_dim] buffer
        per layer bound with IO binding as BOTH past_key_values.N.* and present.N.*;
        (a) full 40-token pass, (b) 30-token pass + 10 single-token steps, (c) rewind to 25
        and re-feed tokens 25..40, (d) rewind to 25 and feed *different* tokens, (e) the same
        with NaN-poisoned buffers (rows at or past the valid length must never be read);
        also (informational) GQA without sharing: compact growing past, ORT-allocated present;
      tiny-gpt2 (concat): full pass vs 30-token prefix + 10 steps feeding present back as past,
        and a rewind by slicing the cache;
    all must agree within 1e-4, and a step with a wrong (zeroed) cache must NOT agree
    (so the tolerance actually tests something),
  * prints greedy 20-token continuations of a FIM prompt and a plain prompt.
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from tokenizers import Tokenizer

TOL = 1e-4
FAILURES: list[str] = []


def check(name: str, diff: float, tol: float = TOL, expect_small: bool = True):
    ok = (diff < tol) if expect_small else (diff > tol)
    rel = "<" if expect_small else ">"
    print(f"  [{'ok' if ok else 'FAIL'}] {name}: max abs diff {diff:.3e} (want {rel} {tol:g})")
    if not ok:
        FAILURES.append(name)


# ----------------------------------------------------------------------------------------


class Model:
    def __init__(self, d: Path):
        self.dir = d
        self.manifest = tomllib.loads((d / "model.toml").read_text())
        m = self.manifest
        self.tok = Tokenizer.from_file(str(d / m["model"]["tokenizer"]))
        self.proto = onnx.load(str(d / m["model"]["onnx"]))
        self.w = {t.name: numpy_helper.to_array(t) for t in self.proto.graph.initializer}
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(str(d / m["model"]["onnx"]), so, providers=["CPUExecutionProvider"])
        o = m["onnx"]
        self.layout = o["layout"]
        self.L, self.nkv, self.hd = o["num_layers"], o["num_kv_heads"], o["head_dim"]
        self.ctx = m["model"]["context_length"]
        self.names = o
        self.pk = [o["past_key"].format(layer=i) for i in range(self.L)]
        self.pv = [o["past_value"].format(layer=i) for i in range(self.L)]
        self.ck = [o["present_key"].format(layer=i) for i in range(self.L)]
        self.cv = [o["present_value"].format(layer=i) for i in range(self.L)]
        self.V = self.tok.get_vocab_size()

    def tid(self, key: str) -> int | None:
        s = self.manifest["tokens"].get(key, "")
        if not s:
            return None
        i = self.tok.token_to_id(s)
        assert i is not None, f"{key}={s!r} not in vocabulary"
        return i

    def describe(self):
        print("  inputs:")
        for i in self.sess.get_inputs():
            print(f"    {i.name:28s} {i.type:16s} {i.shape}")
        print("  outputs:")
        for i in self.sess.get_outputs():
            print(f"    {i.name:28s} {i.type:16s} {i.shape}")

    # ---------- prompts
    def fim_ids(self, prefix: str, suffix: str) -> list[int]:
        tmpl = self.manifest.get("fim", {}).get("template")
        if not tmpl:
            tmpl = {
                "spm": "{bos}{fim_prefix}{fim_suffix}{suffix}{fim_middle}{prefix}",
                "psm": "{bos}{fim_prefix}{prefix}{fim_suffix}{suffix}{fim_middle}",
            }[self.manifest["fim"]["mode"]]
        ids: list[int] = []
        for part in re.split(r"(\{[a-z_]+\})", tmpl):
            if not part:
                continue
            if part == "{prefix}":
                ids += self.tok.encode(prefix, add_special_tokens=False).ids
            elif part == "{suffix}":
                ids += self.tok.encode(suffix, add_special_tokens=False).ids
            elif part.startswith("{"):
                t = self.tid(part[1:-1])
                if t is not None:
                    ids.append(t)
            else:
                ids += self.tok.encode(part, add_special_tokens=False).ids
        return ids

    def stop_ids(self) -> set[int]:
        return {self.tok.token_to_id(s) for s in self.manifest["tokens"].get("stop", [])}


# ----------------------------------------------------------------------------------------
# numpy reference implementations


def rmsnorm(x, eps=1e-5):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)


def layernorm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def ref_llama(m: Model, ids: list[int]) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in m.w.items()}
    gqa = next(n for n in m.proto.graph.node if n.op_type == "GroupQueryAttention")
    nh = next(a.i for a in gqa.attribute if a.name == "num_heads")
    nkv, hd = m.nkv, m.hd
    S = len(ids)
    x = w["model.embed_tokens.weight"][ids]
    cos, sin = w["cos_cache"][:S], w["sin_cache"][:S]  # [S, hd/2]

    def rope(t):  # [S, heads, hd], non-interleaved
        a, b = t[..., : hd // 2], t[..., hd // 2 :]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.concatenate([a * c - b * s, b * c + a * s], -1)

    causal = np.tril(np.ones((S, S), dtype=bool))
    for i in range(m.L):
        p = f"model.layers.{i}"
        n = rmsnorm(x) * w[f"{p}.input_layernorm.weight"]
        q = rope((n @ w[f"{p}.attn.q_proj.MatMul.weight"]).reshape(S, nh, hd))
        k = rope((n @ w[f"{p}.attn.k_proj.MatMul.weight"]).reshape(S, nkv, hd))
        v = (n @ w[f"{p}.attn.v_proj.MatMul.weight"]).reshape(S, nkv, hd)
        out = np.zeros((S, nh, hd))
        for h in range(nh):
            kh = h // (nh // nkv)
            sc = q[:, h] @ k[:, kh].T / np.sqrt(hd)
            sc = np.where(causal, sc, -np.inf)
            out[:, h] = softmax(sc) @ v[:, kh]
        x = x + out.reshape(S, nh * hd) @ w[f"{p}.attn.o_proj.MatMul.weight"]
        n2 = rmsnorm(x) * w[f"{p}.post_attention_layernorm.weight"]
        g = n2 @ w[f"{p}.mlp.gate_proj.MatMul.weight"]
        u = n2 @ w[f"{p}.mlp.up_proj.MatMul.weight"]
        x = x + (g / (1 + np.exp(-g)) * u) @ w[f"{p}.mlp.down_proj.MatMul.weight"]
    return (rmsnorm(x) * w["model.norm.weight"]) @ w["lm_head.MatMul.weight"]


def ref_gpt2(m: Model, ids: list[int]) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in m.w.items()}
    nh, hd = m.nkv, m.hd
    H = nh * hd
    S = len(ids)
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:S]
    causal = np.tril(np.ones((S, S), dtype=bool))
    for i in range(m.L):
        p = f"transformer.h.{i}"
        n = layernorm(x, w[f"{p}.ln_1.weight"], w[f"{p}.ln_1.bias"])
        qkv = n @ w[f"{p}.attn.c_attn.weight"] + w[f"{p}.attn.c_attn.bias"]
        q, k, v = (t.reshape(S, nh, hd) for t in np.split(qkv, 3, axis=-1))
        out = np.zeros((S, nh, hd))
        for h in range(nh):
            sc = np.where(causal, q[:, h] @ k[:, h].T / np.sqrt(hd), -np.inf)
            out[:, h] = softmax(sc) @ v[:, h]
        x = x + out.reshape(S, H) @ w[f"{p}.attn.c_proj.weight"] + w[f"{p}.attn.c_proj.bias"]
        n2 = layernorm(x, w[f"{p}.ln_2.weight"], w[f"{p}.ln_2.bias"])
        hh = n2 @ w[f"{p}.mlp.c_fc.weight"] + w[f"{p}.mlp.c_fc.bias"]
        gel = 0.5 * hh * (1 + np.tanh(np.sqrt(2 / np.pi) * (hh + 0.044715 * hh**3)))
        x = x + gel @ w[f"{p}.mlp.c_proj.weight"] + w[f"{p}.mlp.c_proj.bias"]
    return layernorm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"]) @ w["lm_head.weight"]


# ----------------------------------------------------------------------------------------
# runners


class SharedKV:
    """gqa-shared: one [1, kv, context_length, hd] buffer per layer, bound as past AND present."""

    def __init__(self, m: Model, backing: str = "ort"):
        self.m = m
        shape = [1, m.nkv, m.ctx, m.hd]
        self.np_bufs = {}
        self.bufs = {}
        for name in m.pk + m.pv:
            if backing == "ort":
                self.bufs[name] = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cpu", 0)
            else:  # numpy-backed, so the test can poison it; the OrtValue aliases this memory
                arr = np.full(shape, np.nan, dtype=np.float32)
                self.np_bufs[name] = arr
                self.bufs[name] = ort.OrtValue.ortvalue_from_numpy(arr, "cpu", 0)
                assert self.bufs[name].data_ptr() == arr.ctypes.data, "OrtValue does not alias numpy"
        self.n = 0  # valid cached tokens
        self.last_present_shapes = None

    def poison_from(self, start: int):
        for arr in self.np_bufs.values():
            arr[:, :, start:, :] = np.nan

    def run(self, ids: list[int]) -> np.ndarray:
        m = self.m
        total = self.n + len(ids)
        assert total <= m.ctx
        io = m.sess.io_binding()
        io.bind_cpu_input(m.names["input_ids"], np.asarray([ids], dtype=np.int64))
        io.bind_cpu_input(m.names["attention_mask"], np.ones((1, total), dtype=np.int64))
        io.bind_output(m.names["logits"], "cpu")
        for pk, pv, ck, cv in zip(m.pk, m.pv, m.ck, m.cv):
            io.bind_ortvalue_input(pk, self.bufs[pk])
            io.bind_ortvalue_input(pv, self.bufs[pv])
            io.bind_ortvalue_output(ck, self.bufs[pk])
            io.bind_ortvalue_output(cv, self.bufs[pv])
        m.sess.run_with_iobinding(io)
        outs = io.get_outputs()
        self.last_present_shapes = [tuple(o.shape()) for o in outs[1:]]
        # the present outputs must be the very same memory as the bound buffers
        for o, name in zip(outs[1:], [x for pair in zip(m.pk, m.pv) for x in pair]):
            assert o.data_ptr() == self.bufs[name].data_ptr(), "present is not the shared buffer"
        self.n = total
        return outs[0].numpy()[0]  # [S, V]


class ConcatKV:
    """concat: past starts empty; present (= concat(past, new)) is fed back as next past."""

    def __init__(self, m: Model):
        self.m = m
        self.past = {n: np.zeros((1, m.nkv, 0, m.hd), np.float32) for n in m.pk + m.pv}
        self.last_present_shapes = None

    @property
    def n(self):
        return self.past[self.m.pk[0]].shape[2]

    def rewind(self, n: int):
        self.past = {k: np.ascontiguousarray(v[:, :, :n]) for k, v in self.past.items()}

    def run(self, ids: list[int]) -> np.ndarray:
        m = self.m
        feeds = {
            m.names["input_ids"]: np.asarray([ids], dtype=np.int64),
            m.names["attention_mask"]: np.ones((1, self.n + len(ids)), dtype=np.int64),
        }
        feeds.update(self.past)
        out_names = [m.names["logits"]] + [x for pair in zip(m.ck, m.cv) for x in pair]
        res = m.sess.run(out_names, feeds)
        self.last_present_shapes = [r.shape for r in res[1:]]
        for (pk, pv), i in zip(zip(m.pk, m.pv), range(m.L)):
            self.past[pk], self.past[pv] = res[1 + 2 * i], res[2 + 2 * i]
        return res[0][0]


def new_cache(m: Model, **kw):
    return SharedKV(m, **kw) if m.layout == "gqa-shared" else ConcatKV(m)


def greedy(m: Model, ids: list[int], n: int = 20) -> tuple[list[int], str]:
    c = new_cache(m)
    stops = m.stop_ids()
    out: list[int] = []
    logits = c.run(ids)
    for _ in range(n):
        t = int(logits[-1].argmax())
        if t in stops:
            out.append(t)
            break
        out.append(t)
        logits = c.run([t])
    return out, m.tok.decode([t for t in out if t not in stops], skip_special_tokens=False)


# ----------------------------------------------------------------------------------------


def sample_ids(m: Model) -> tuple[list[int], list[int]]:
    text = (
        "import os\nimport sys\n\n\ndef main(argv):\n    parser = argparse.ArgumentParser()\n"
        "    for name in sorted(os.listdir(path)):\n        if name.endswith('.py'):\n"
        "            print(name)\n    return 0\n"
    )
    ids = m.tok.encode(text, add_special_tokens=False).ids
    assert len(ids) >= 40, len(ids)
    alt = m.tok.encode("class Foo(object):\n    def __init__(self, x):\n        self.x = x\n"
                       "        self.items = []\n", add_special_tokens=False).ids
    assert len(alt) >= 15, len(alt)
    return ids[:40], alt[:15]


def verify(m: Model):
    print(f"\n=== {m.dir.name}  (layout={m.layout}, fim={m.manifest['fim']['mode']}, vocab={m.V}, "
          f"context_length={m.ctx}, model.onnx {(m.dir / 'model.onnx').stat().st_size / 1e6:.2f} MB)")
    for key in ("eos", "fim_prefix", "fim_suffix", "fim_middle", "file_separator"):
        m.tid(key)
    for s in m.manifest["tokens"]["stop"]:
        assert m.tok.token_to_id(s) is not None, s
    rt = "def f(x):\n    return x  # café → ok\n\tif x: pass\n"
    assert m.tok.decode(m.tok.encode(rt, add_special_tokens=False).ids) == rt, "tokenizer round trip"
    m.describe()

    ids, alt = sample_ids(m)

    # (a) full pass
    c = new_cache(m)
    full = c.run(ids)
    print(f"  full pass: logits {tuple(full.shape)} (batch dim dropped), present shapes {c.last_present_shapes}")
    ref = (ref_llama if m.layout == "gqa-shared" else ref_gpt2)(m, ids)
    check("onnxruntime vs numpy reference (40 tokens)", float(np.abs(full - ref).max()))
    print(f"  logit scale: last-row max {full[-1].max():.2f}, std {full[-1].std():.2f}")
    # every graph-optimization level must load and agree (ORT fusions have bitten before)
    worst = 0.0
    for lvl in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED):
        so = ort.SessionOptions()
        so.graph_optimization_level = lvl
        so.log_severity_level = 3
        saved = m.sess
        m.sess = ort.InferenceSession(str(m.dir / m.manifest["model"]["onnx"]), so,
                                      providers=["CPUExecutionProvider"])
        try:
            worst = max(worst, float(np.abs(new_cache(m).run(ids) - full).max()))
        finally:
            m.sess = saved
    check("optimization levels DISABLE_ALL/BASIC/EXTENDED vs ENABLE_ALL", worst)

    # (b) prefix + single steps
    c = new_cache(m)
    parts = [c.run(ids[:30])]
    for t in range(30, 40):
        parts.append(c.run([ids[t]]))
    check("30-token pass + 10 single-token steps vs full pass", float(np.abs(np.concatenate(parts) - full).max()))
    print(f"    present shapes after a decode step: {c.last_present_shapes}")

    # (c) rewind to 25, re-feed 25..40
    if m.layout == "gqa-shared":
        c.n = 25
    else:
        c.rewind(25)
    rew = c.run(ids[25:40])
    check("rewind to 25 + re-feed tokens 25..40 vs full pass", float(np.abs(rew - full[25:40]).max()))

    # (d) rewind to 25, feed different tokens: stale cache rows must not leak
    ids2 = ids[:25] + alt
    full2 = c.__class__(m).run(ids2) if m.layout != "gqa-shared" else SharedKV(m).run(ids2)
    if m.layout == "gqa-shared":
        c.n = 25
    else:
        c.rewind(25)
    d = c.run(alt)
    check("rewind to 25 + different tokens vs full pass over the new sequence",
          float(np.abs(d - full2[25:]).max()))

    if m.layout == "gqa-shared":
        # (e) NaN-poisoned buffers: rows at/after the valid length must never be read
        c = SharedKV(m, backing="numpy")
        parts = [c.run(ids[:30])]
        for t in range(30, 40):
            c.poison_from(c.n)
            parts.append(c.run([ids[t]]))
        c.n = 25
        c.poison_from(25)
        parts.append(c.run(ids[25:40]))
        got = np.concatenate(parts)
        want = np.concatenate([full, full[25:40]])
        check("NaN-poisoned buffers (prefix + steps + rewind) vs full pass",
              float(np.nan_to_num(np.abs(got - want), nan=np.inf).max()))

    if m.layout == "gqa-shared":
        # (f0) informational fallback: GQA without buffer sharing (compact past that grows,
        # ORT-allocated present = [1, kv, past+new, hd]), fed back like the concat layout
        c = ConcatKV(m)
        parts = [c.run(ids[:30])]
        for t in range(30, 40):
            parts.append(c.run([ids[t]]))
        check("no sharing: growing compact past (present = [1,kv,total,hd]) vs full pass",
              float(np.abs(np.concatenate(parts) - full).max()))
        print(f"    present shapes without sharing: {c.last_present_shapes}")

    # (f) the cache must matter: a decode step over a zeroed cache must differ
    c = new_cache(m)
    if m.layout == "gqa-shared":
        c2 = SharedKV(m, backing="numpy")
        for a in c2.np_bufs.values():
            a[:] = 0.0
        c2.n = 39
        wrong = c2.run([ids[39]])
    else:
        c.past = {k: np.zeros((1, m.nkv, 39, m.hd), np.float32) for k in c.past}
        wrong = c.run([ids[39]])
    check("zeroed cache must change the logits (sensitivity)", float(np.abs(wrong[0] - full[39]).max()),
          tol=1e-3, expect_small=False)

    # samples
    prefix, suffix = "def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
    fim = m.fim_ids(prefix, suffix)
    print(f"  FIM prompt ({m.manifest['fim']['mode']}): {m.tok.decode(fim, skip_special_tokens=False)!r}")
    out, text = greedy(m, fim)
    print(f"    greedy 20 -> {text!r}  ids={out}")
    plain = m.tok.encode("import os\nimport ", add_special_tokens=False).ids
    out, text = greedy(m, plain)
    print(f"  plain prompt 'import os\\nimport ':\n    greedy 20 -> {text!r}  ids={out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=str(Path(__file__).resolve().parents[1]), help="model-assets folder")
    ap.add_argument("models", nargs="*", default=["tiny-llama", "tiny-gpt2"])
    args = ap.parse_args()
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}")
    for name in args.models:
        verify(Model(Path(args.dir) / name))
    print()
    if FAILURES:
        print(f"FAILED: {FAILURES}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
