"""The LM head of a builder export computes the logits of the last K positions, K chosen per run.

onnxruntime-genai's builder with `prune_lm_head=true` keeps only the last position before the
LM head (`Gather(hidden, -1, axis=1)` + `Unsqueeze(axis=1)`), so a prefill of S tokens pays for
one row of the 151,936-wide head instead of S. Speculative decoding needs the logits of every
token a verification run feeds (the token before the draft and the draft). `keep_last_k`
replaces the pruning pair with `Slice(hidden, -logits_to_keep, end, axis=1)`, where
`logits_to_keep` (the name transformers gives this argument) is a new int64 `[1]` graph input
that is also an initializer holding 1: a caller that does not feed it (an older moat, ONNX
Runtime GenAI, the Python tools) gets the pruned graph's single row, exactly as before; moat
feeds 1 for a prefill and draft length + 1 for a verification.

`check` runs the original graph, the edited one and an all-rows variant (the pruning removed) on
a prompt and asserts that K = 1 gives the original graph's logits and K > 1 the all-rows graph's
last K rows. `upgrade_folder` applies the edit to an installed model folder (model.onnx only: the
weights in model.onnx.data are untouched).

    python lm_head_rows.py MODEL_DIR [--check]   # edit MODEL_DIR/model.onnx in place, then check
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

INPUT = "logits_to_keep"
SLICE_NAME = "/lm_head/keep_last_k/Slice"


class EditError(Exception):
    pass


def _consumers(graph, name: str) -> list:
    return [n for n in graph.node if name in n.input]


def _producer(graph, name: str):
    return next((n for n in graph.node if name in n.output), None)


def _const_int(graph, name: str):
    """The integer value of a Constant node's output or an initializer, or None."""
    from onnx import numpy_helper
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init).reshape(-1).tolist()
    node = _producer(graph, name)
    if node is not None and node.op_type == "Constant":
        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t).reshape(-1).tolist()
    return None


def find_prune(graph, logits: str = "logits"):
    """The builder's pruning pair before the LM head: (Gather, Unsqueeze), or None when the graph
    has none (an all-rows export, or one already edited)."""
    head = _producer(graph, logits)
    if head is None:
        raise EditError(f"no node produces {logits!r}")
    # The head may be MatMul(+Add) or MatMulNBits: follow its data input back to the Unsqueeze.
    node, seen = head, 0
    while node is not None and seen < 4:
        src = _producer(graph, node.input[0])
        if src is not None and src.op_type == "Unsqueeze":
            gather = _producer(graph, src.input[0])
            if (gather is not None and gather.op_type == "Gather"
                    and _const_int(graph, gather.input[1]) == [-1]
                    and next((a.i for a in gather.attribute if a.name == "axis"), 0) == 1):
                return gather, src
            return None
        node, seen = src, seen + 1
    return None


def _drop_value_info(graph, names: set[str]) -> None:
    """Forgets the recorded shapes of `names` (the builder records `[batch, 1, hidden]` for the
    pruned hidden state; kept, it would make ONNX Runtime expect one row)."""
    keep = [v for v in graph.value_info if v.name not in names]
    del graph.value_info[:]
    graph.value_info.extend(keep)


def has_k_input(model) -> bool:
    return any(i.name == INPUT for i in model.graph.input)


def keep_last_k(model, logits: str = "logits") -> bool:
    """Edits `model` (an onnx ModelProto) in place; returns False when it already has the
    `logits_to_keep` input. Raises EditError when there is no pruning pair to replace."""
    from onnx import TensorProto, helper, numpy_helper
    g = model.graph
    if has_k_input(model):
        return False
    found = find_prune(g, logits)
    if found is None:
        raise EditError("the graph has no prune_lm_head Gather/Unsqueeze before the LM head")
    gather, unsq = found
    hidden, out = gather.input[0], unsq.output[0]
    if any(c is not unsq for c in _consumers(g, gather.output[0])):
        raise EditError("the pruning Gather has other consumers")
    g.input.append(helper.make_tensor_value_info(INPUT, TensorProto.INT64, [1]))
    # Also an initializer: the default (1) when a caller does not feed it.
    g.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), INPUT))
    g.initializer.append(numpy_helper.from_array(np.array([2**62], dtype=np.int64),
                                                 "/lm_head/keep_last_k/end"))
    g.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64),
                                                 "/lm_head/keep_last_k/axis"))
    neg = helper.make_node("Neg", [INPUT], ["/lm_head/keep_last_k/start"],
                           name="/lm_head/keep_last_k/Neg")
    sl = helper.make_node("Slice", [hidden, "/lm_head/keep_last_k/start",
                                    "/lm_head/keep_last_k/end", "/lm_head/keep_last_k/axis"],
                          [out], name=SLICE_NAME)
    _drop_value_info(g, {gather.output[0], out})
    at = list(g.node).index(gather)
    g.node.remove(gather)
    g.node.remove(unsq)
    g.node.insert(at, neg)
    g.node.insert(at + 1, sl)
    index = _producer(g, gather.input[1])
    if index is not None and index.op_type == "Constant" and not _consumers(g, gather.input[1]):
        g.node.remove(index)
    for o in g.output:
        if o.name == logits:
            dims = o.type.tensor_type.shape.dim
            if len(dims) == 3:
                dims[1].ClearField("dim_value")
                dims[1].dim_param = "logits_rows"
    return True


def all_rows(model, logits: str = "logits") -> None:
    """The variant that returns every position's logits (the pruning removed): the reference
    `check` compares K > 1 against. Works on a graph with the pair or with the K slice."""
    g = model.graph
    found = find_prune(g, logits)
    if found is not None:
        gather, unsq = found
        hidden, out = gather.input[0], unsq.output[0]
        drop = [gather, unsq]
    else:
        sl = next((n for n in g.node if n.name == SLICE_NAME), None)
        if sl is None:
            raise EditError("neither a pruning pair nor a logits_to_keep slice")
        hidden, out = sl.input[0], sl.output[0]
        drop = [sl]
    _drop_value_info(g, {out, *(o for n in drop for o in n.output)})
    for n in drop:
        g.node.remove(n)
    for n in _consumers(g, out):
        for i, name in enumerate(n.input):
            if name == out:
                n.input[i] = hidden
    for o in g.output:
        if o.name == logits:
            dims = o.type.tensor_type.shape.dim
            if len(dims) == 3:
                dims[1].ClearField("dim_value")
                dims[1].dim_param = "sequence_length"


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _save(model, path: Path) -> None:
    import onnx
    onnx.save_model(model, str(path))


def _run(path: Path, feed: dict, threads: int, logits: str) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Errors only: ONNX Runtime warns that an initializer is also an input (`logits_to_keep`'s
    # default, on purpose).
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    out = {}
    for key, f in feed.items():
        out[key] = sess.run([logits], {k: v for k, v in f.items() if k in names or k == INPUT})[0]
    del sess
    return out


def _feeds(folder: Path, model, ids: list[int], ks: list[int]) -> dict:
    """Feeds for one prefill of `ids` (empty cache) per K in `ks` (None: K not fed)."""
    import tomllib
    o = tomllib.loads((folder / "model.toml").read_text())["onnx"]
    base = {o["input_ids"]: np.asarray([ids], dtype=np.int64),
            o["attention_mask"]: np.ones((1, len(ids)), dtype=np.int64)}
    if o.get("position_ids"):
        base[o["position_ids"]] = np.arange(len(ids), dtype=np.int64)[None, :]
    dtype = np.float16 if o.get("kv_dtype") == "float16" else np.float32
    z = np.zeros((1, int(o["num_kv_heads"]), 0, int(o["head_dim"])), dtype=dtype)
    for i in range(int(o["num_layers"])):
        base[o["past_key"].format(layer=i)] = z
        base[o["past_value"].format(layer=i)] = z
    feeds = {}
    for k in ks:
        f = dict(base)
        if k is not None:
            f[INPUT] = np.array([k], dtype=np.int64)
        feeds[k] = f
    return feeds


CHECK_TEXT = ("def fibonacci(n):\n    if n < 2:\n        return n\n"
              "    return fibonacci(n - 1) + fibonacci(n - 2)\n\n\nfor i in range(10):\n"
              "    print(fibonacci(i))\n")


def check(folder: Path, original, edited, threads: int = 2, logits: str = "logits") -> dict:
    """Runs the original graph, the edited one (K = 1, 4, 7, and K not fed) and the all-rows
    variant on one prompt; raises EditError unless K = 1 (fed or not) equals the original's
    logits and K > 1 equals the all-rows graph's last K rows (within float rounding of the same
    kernels: both differences are reported)."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tok.encode(CHECK_TEXT, add_special_tokens=False).ids
    ref_all = type(edited)()
    ref_all.CopyFrom(edited)
    all_rows(ref_all, logits)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".lm-head-check-") as tmp:
        tmp = Path(tmp)
        for f in folder.iterdir():
            if f.name.endswith(".data"):
                _link_or_copy(f, tmp / f.name)
        paths = {}
        for name, m in (("original", original), ("edited", edited), ("all", ref_all)):
            paths[name] = tmp / f"{name}.onnx"
            _save(m, paths[name])
        ks = [1, 4, 7]
        orig = _run(paths["original"], _feeds(folder, original, ids, [None]), threads, logits)
        got = _run(paths["edited"], _feeds(folder, edited, ids, [None, *ks]), threads, logits)
        full = _run(paths["all"], _feeds(folder, ref_all, ids, [None]), threads, logits)
    o, a = orig[None][0], full[None][0]
    report = {"prompt_tokens": len(ids)}
    if got[None].shape[1] != 1 or got[1].shape[1] != 1:
        raise EditError(f"K = 1 returned {got[1].shape[1]} rows")
    d1 = float(np.max(np.abs(got[1][0] - o)))
    d_default = float(np.max(np.abs(got[None][0] - o)))
    report["k1_max_abs_diff_vs_pruned"] = d1
    report["unfed_max_abs_diff_vs_pruned"] = d_default
    if d1 > 1e-4 or d_default > 1e-4:
        raise EditError(f"K = 1 differs from the pruned graph by {max(d1, d_default)}")
    worst = 0.0
    for k in ks[1:]:
        rows = got[k][0]
        if rows.shape[0] != k:
            raise EditError(f"K = {k} returned {rows.shape[0]} rows")
        d = float(np.max(np.abs(rows - a[-k:])))
        worst = max(worst, d)
        if d > 1e-3 * (float(np.max(np.abs(a))) + 1.0):
            raise EditError(f"K = {k}: rows differ from the all-rows graph's by {d}")
        if [int(np.argmax(r)) for r in rows] != [int(np.argmax(r)) for r in a[-k:]]:
            raise EditError(f"K = {k}: greedy choices differ from the all-rows graph's")
    report["k_gt1_max_abs_diff_vs_all_rows"] = worst
    report["k_checked"] = ks
    return report


def edit_file(src: Path, dst: Path) -> tuple[bool, object, object]:
    """Loads `src` (graph only, external data left where it is), writes the edited graph to
    `dst`; returns (changed, original, edited)."""
    import onnx
    original = onnx.load(str(src), load_external_data=False)
    edited = type(original)()
    edited.CopyFrom(original)
    changed = keep_last_k(edited)
    if changed:
        # ONNX Runtime loading it in `check` validates it (onnx.checker wants the external data
        # beside the file it checks).
        _save(edited, dst)
    return changed, original, edited


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    folder = args.model_dir.resolve()
    tmp = folder / ".model.onnx.edit"
    try:
        changed, original, edited = edit_file(folder / "model.onnx", tmp)
        if not changed:
            print(f"{folder}: already has {INPUT}")
            return 0
        report = check(folder, original, edited, args.threads)
        tmp.rename(folder / "model.onnx")
        print(report)
    except EditError as e:
        print(f"lm_head_rows: {e}", file=sys.stderr)
        return 2
    finally:
        tmp.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
