#!/usr/bin/env python3
"""The naive baseline for `moat bench --baseline`: the same ONNX model, driven by the
`onnxruntime` Python package in the most straightforward way.

* one InferenceSession, same intra-op thread count as moat, spinning off (as moat does, so the
  two runtimes do not fight over the cores), graph optimizations on;
* every request (keystroke) runs its whole prompt from an empty cache: no reuse across requests;
* within a request, decoding feeds each step's `present.*` back as the next `past_key_values.*`
  (plain `session.run` with numpy arrays; for the gqa-shared layout this is the "compact growing
  past" mode, which onnxruntime supports without IO binding);
* greedy argmax, the same number of new tokens as moat generated for that keystroke.

Input: a JSON file written by `moat bench` (the exact prompts moat's pipeline built):
  {"model_dir", "threads", "repeats", "ttft": [{"prompt_tokens", "prompt"}],
   "decode": {"prompt", "steps"}, "keystrokes": [{"prompt", "new_tokens"}]}
Output (stdout): JSON with load_ms, ttft, decode and keystroke latencies.

Standalone use:  python3 bench/baseline_ort.py INPUT.json
Needs: numpy, onnxruntime (1.32 is what moat is tested with); Python >= 3.11 (tomllib).
"""

from __future__ import annotations

import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort


class Naive:
    def __init__(self, model_dir: Path, threads: int):
        manifest_path = model_dir / "model.toml" if model_dir.is_dir() else model_dir
        self.manifest = m = tomllib.loads(manifest_path.read_text())
        o = m["onnx"]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.log_severity_level = 3
        t = time.perf_counter()
        self.sess = ort.InferenceSession(
            str(manifest_path.parent / m["model"]["onnx"]), so, providers=["CPUExecutionProvider"]
        )
        self.load_ms = (time.perf_counter() - t) * 1000
        self.o = o
        layers = o["num_layers"]
        fmt = lambda key, i: o.get(key, "").format(layer=i)  # noqa: E731
        self.past = [(fmt("past_key", i), fmt("past_value", i)) for i in range(layers)]
        self.present = [(fmt("present_key", i), fmt("present_value", i)) for i in range(layers)]
        self.outputs = [o.get("logits", "logits")] + [n for pair in self.present for n in pair]
        self.kv_shape = (1, o["num_kv_heads"], 0, o["head_dim"])
        self.position_ids = o.get("position_ids", "")

    def _run(self, ids: list[int], past: dict[str, np.ndarray], past_len: int):
        o = self.o
        total = past_len + len(ids)
        feeds = {
            o.get("input_ids", "input_ids"): np.asarray([ids], dtype=np.int64),
            o.get("attention_mask", "attention_mask"): np.ones((1, total), dtype=np.int64),
        }
        if self.position_ids:
            feeds[self.position_ids] = np.arange(past_len, total, dtype=np.int64)[None, :]
        feeds.update(past)
        res = self.sess.run(self.outputs, feeds)
        new_past = {}
        for i, (pk, pv) in enumerate(self.past):
            new_past[pk], new_past[pv] = res[1 + 2 * i], res[2 + 2 * i]
        return res[0][0, -1], new_past, total

    def request(self, prompt: list[int], new_tokens: int) -> tuple[float, float]:
        """Full prompt from an empty cache, then greedy decoding; returns (ttft_ms, total_ms)."""
        t = time.perf_counter()
        empty = {n: np.zeros(self.kv_shape, np.float32) for pair in self.past for n in pair}
        logits, past, n = self._run(prompt, empty, 0)
        tok = int(np.argmax(logits))
        ttft = (time.perf_counter() - t) * 1000
        for _ in range(new_tokens - 1):
            logits, past, n = self._run([tok], past, n)
            tok = int(np.argmax(logits))
        return ttft, (time.perf_counter() - t) * 1000


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile, as moat computes it."""
    if not values:
        return 0.0
    v = sorted(values)
    rank = max(1, min(len(v), int(np.ceil(p / 100 * len(v)))))
    return v[rank - 1]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(Path(sys.argv[1]).read_text())
    model = Naive(Path(spec["model_dir"]), int(spec["threads"]))
    repeats = int(spec.get("repeats", 3))
    model.request(spec["ttft"][0]["prompt"] if spec["ttft"] else [0], 1)  # warm-up

    ttft = []
    for item in spec["ttft"]:
        times = [model.request(item["prompt"], 1)[0] for _ in range(repeats)]
        ttft.append({
            "prompt_tokens": item["prompt_tokens"],
            "ms_median": round(pct(times, 50), 3),
            "ms_min": round(min(times), 3),
            "runs": len(times),
        })

    d = spec["decode"]
    steps = int(d["steps"])
    empty = {n: np.zeros(model.kv_shape, np.float32) for pair in model.past for n in pair}
    logits, past, n = model._run(d["prompt"], empty, 0)
    t = time.perf_counter()
    for _ in range(steps):
        logits, past, n = model._run([int(np.argmax(logits))], past, n)
    ms_per_token = (time.perf_counter() - t) * 1000 / max(steps, 1)

    lat, ttfts = [], []
    for k in spec["keystrokes"]:
        first, total = model.request(k["prompt"], int(k["new_tokens"]))
        ttfts.append(first)
        lat.append(total)

    out = {
        "runtime": f"onnxruntime {ort.__version__} (Python {sys.version.split()[0]})",
        "method": "full prompt per request (no KV reuse across requests), present fed back as past within a request",
        "load_ms": round(model.load_ms, 1),
        "ttft": ttft,
        "decode": {
            "prompt_tokens": len(d["prompt"]),
            "steps": steps,
            "ms_per_token": round(ms_per_token, 4),
            "tokens_per_s": round(1000 / max(ms_per_token, 1e-9), 1),
        },
        "keystroke": {
            "p50_ms": round(pct(lat, 50), 3),
            "p95_ms": round(pct(lat, 95), 3),
            "mean_ms": round(sum(lat) / max(len(lat), 1), 3),
            "ttft_p50_ms": round(pct(ttfts, 50), 3),
            "latencies_ms": [round(x, 3) for x in lat],
        },
    }
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
