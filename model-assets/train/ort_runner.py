"""Run an exported model folder (model.toml + tokenizer.json + ONNX) with ONNX Runtime, the way
the server does: SPM/PSM prompt from the manifest, KV cache across steps, greedy decoding.

The cache here is the compact form (present of one step fed back as past of the next), which
the builder's GroupQueryAttention graph accepts as well as the server's shared buffer.
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path

import numpy as np

DEFAULT_TEMPLATES = {
    "spm": "{bos}{fim_prefix}{fim_suffix}{suffix}{fim_middle}{prefix}",
    "psm": "{bos}{fim_prefix}{prefix}{fim_suffix}{suffix}{fim_middle}",
}


class OrtModel:
    def __init__(self, model_dir: Path, threads: int = 2):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        self.dir = Path(model_dir)
        self.manifest = tomllib.loads((self.dir / "model.toml").read_text())
        m, o = self.manifest["model"], self.manifest["onnx"]
        self.tok = Tokenizer.from_file(str(self.dir / m["tokenizer"]))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sess = ort.InferenceSession(str(self.dir / m["onnx"]), so,
                                         providers=["CPUExecutionProvider"])
        self.o = o
        self.layers = int(o["num_layers"])
        self.kv_heads = int(o["num_kv_heads"])
        self.head_dim = int(o["head_dim"])
        self.kv_dtype = np.float16 if o.get("kv_dtype") == "float16" else np.float32
        self.context_length = int(m["context_length"])
        self.input_names = {i.name for i in self.sess.get_inputs()}
        t = self.manifest["tokens"]
        self.stop_ids = {self.tok.token_to_id(s) for s in t.get("stop", [t["eos"]])}
        self.stop_ids.discard(None)
        mode = self.manifest.get("fim", {}).get("mode", "spm")
        self.template = self.manifest.get("fim", {}).get("template") or DEFAULT_TEMPLATES[mode]

    # -- prompt ---------------------------------------------------------------------------
    def fim_prompt(self, prefix_ids: list[int], suffix_ids: list[int], context_ids=()) -> list[int]:
        ids = list(context_ids)
        t = self.manifest["tokens"]
        for name in re.findall(r"\{(\w+)\}", self.template):
            if name == "prefix":
                ids.extend(prefix_ids)
            elif name == "suffix":
                ids.extend(suffix_ids)
            else:
                s = t.get(name, "")
                if s:
                    ids.append(self.tok.token_to_id(s))
        return ids

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids if text else []

    # -- model ----------------------------------------------------------------------------
    def empty_past(self):
        z = np.zeros((1, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
        return [(z, z) for _ in range(self.layers)]

    def step(self, ids: list[int], past, past_len: int):
        feed = {self.o["input_ids"]: np.asarray([ids], dtype=np.int64),
                self.o["attention_mask"]: np.ones((1, past_len + len(ids)), dtype=np.int64)}
        pos = self.o.get("position_ids", "")
        if pos:
            feed[pos] = np.arange(past_len, past_len + len(ids), dtype=np.int64)[None, :]
        for i, (k, v) in enumerate(past):
            feed[self.o["past_key"].format(layer=i)] = k
            feed[self.o["past_value"].format(layer=i)] = v
        names = [self.o["logits"]] + [x for i in range(self.layers)
                                      for x in (self.o["present_key"].format(layer=i),
                                                self.o["present_value"].format(layer=i))]
        outs = self.sess.run(names, feed)
        logits = outs[0][0, -1]
        present = [(outs[1 + 2 * i], outs[2 + 2 * i]) for i in range(self.layers)]
        return logits, present

    def cached_logits(self, prompt: list[int], cont: list[int]) -> list[tuple[int, np.ndarray]]:
        """Logits the way the server computes them: `prompt` in one run, then each token of
        `cont` but the last as a cached single-token step. Returns (position, logits) pairs to
        compare with a full forward pass over prompt + cont."""
        logits, past = self.step(prompt, self.empty_past(), 0)
        steps = [(len(prompt) - 1, logits)]
        n = len(prompt)
        for t in cont[:-1]:
            logits, past = self.step([t], past, n)
            n += 1
            steps.append((n - 1, logits))
        return steps

    def generate(self, prompt: list[int], max_new: int, stop_at_newline: bool = True):
        """Greedy decoding; returns (new token ids, seconds to first token, total seconds)."""
        t0 = time.perf_counter()
        logits, past = self.step(prompt, self.empty_past(), 0)
        ttft = time.perf_counter() - t0
        n = len(prompt)
        out: list[int] = []
        text = ""
        for _ in range(max_new):
            nxt = int(np.argmax(logits))
            if nxt in self.stop_ids:
                break
            out.append(nxt)
            if stop_at_newline:
                text = self.tok.decode(out)
                if "\n" in text.lstrip("\n") or (text.startswith("\n") and len(out) > 1):
                    break
            if n + 1 >= self.context_length:
                break
            logits, past = self.step([nxt], past, n)
            n += 1
        return out, ttft, time.perf_counter() - t0
