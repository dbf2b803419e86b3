"""`moat model import` end to end on models the tests make, and its refusals of bad input.

Two families, two source kinds:
  - a transformers folder: the tiny Llama that model-assets/train trained (moat-cpu-4m's `hf/`,
    a real checkpoint with FIM tokens), imported at int8;
  - a GGUF: a tiny random Qwen2 (q/k/v biases, GQA) written here with gguf-py, its matrices in
    Q8_0 (so the import dequantizes), imported at fp32 and compared with the original PyTorch
    model's logits.
Each import runs through the real `moat` binary (target/debug/moat), which loads the result with
the server's backend and generates. Bad input must fail with a message naming the problem and
leave nothing in the models folder.

    cd model-assets/train && .venv/bin/python -m pytest tests/test_import.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from moat_binary import moat_bin

HERE = Path(__file__).resolve().parent.parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

if os.environ.get("MOAT_REQUIRE_TRAINING_STACK"):
    import gguf  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
else:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")

TINY_HF = REPO / "model-assets" / "moat-cpu-4m" / "hf"


def moat_import(models: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, MOAT_PYTHON=sys.executable)
    return subprocess.run([str(moat_bin()), "model", "import", *map(str, args),
                           "--models-dir", str(models)],
                          capture_output=True, text=True, env=env, timeout=900)


def leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


# -- a tiny Qwen2 GGUF ------------------------------------------------------------------------------

def tiny_qwen2(tmp: Path):
    """A random tiny Qwen2 with moat-cpu-4m's byte-level BPE tokenizer (FIM tokens included)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    tok = json.loads((TINY_HF / "tokenizer.json").read_text())
    vocab = len(tok["model"]["vocab"])
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
                      tie_word_embeddings=False)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # make the logits spread (random init gives near-uniform ones)
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(3.0)
        model.lm_head.weight.copy_(model.model.embed_tokens.weight)
    return model, tok


def write_gguf(model, tok: dict, path: Path, quant: bool = True) -> None:
    import gguf
    cfg = model.config
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("moat tiny qwen2 test")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quant else gguf.LlamaFileType.ALL_F32)
    vocab = tok["model"]["vocab"]
    tokens = [None] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    special = {a["id"] for a in tok["added_tokens"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
                       for i in range(len(tokens))])
    merges = tok["model"]["merges"]
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)
    w.add_add_bos_token(False)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
             "output_norm.weight", "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight",
                 "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
                 "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
                 "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
                 "self_attn.o_proj.weight": "attn_output.weight",
                 "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                 "mlp.down_proj.weight": "ffn_down.weight"}
    for i in range(cfg.num_hidden_layers):
        for k, v in per_layer.items():
            names[f"model.layers.{i}.{k}"] = f"blk.{i}.{v}"
    for hf_name, g_name in names.items():
        data = sd[hf_name]
        if quant and data.ndim == 2:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(g_name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(g_name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def qwen_gguf(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gguf")
    model, tok = tiny_qwen2(tmp)
    path = tmp / "tiny-qwen2-q8_0.gguf"
    write_gguf(model, tok, path)
    return model, path


# -- imports ----------------------------------------------------------------------------------------

def test_import_gguf_qwen2(tmp_path, qwen_gguf):
    model, path = qwen_gguf
    models = tmp_path / "models"
    r = moat_import(models, path, "--precision", "fp32", "--name", "tiny-qwen2", "--default")
    assert r.returncode == 0, r.stdout + r.stderr
    out = models / "tiny-qwen2"
    report = json.loads((out / "import.json").read_text())
    assert report["source"]["kind"] == "gguf" and report["source"]["architecture"] == "qwen2"
    assert report["tie"]["tied"], report["tie"]        # equal matrices: shared embeddings
    assert report["logits_check"]["top1_agreement"] >= 0.99
    assert report["tokens"]["family"] == "qwen"
    assert report["template"]["chosen"] in ("spm", "psm", "prefix")
    manifest = (out / "model.toml").read_text()
    assert 'fim_prefix = "<|fim_prefix|>"' in manifest and "num_layers = 2" in manifest
    assert "[context]\n" in manifest and "\nformat = " in manifest   # repository-context layout
    assert "\nspeculative = false\n" in manifest   # measured not to pay (bench/README.md)
    assert (models / "default").resolve() == out.resolve()
    assert "ready in" in r.stderr and "[8/8] commit" in r.stderr

    # The export against the original PyTorch model (not only the dequantized one): Q8_0 error only.
    import torch
    from ort_runner import OrtModel
    ortm = OrtModel(out)
    ids = ortm.encode("def add(a, b):\n    return a + b\n")
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0, -1].numpy()
    got, _ = ortm.step(ids, ortm.empty_past(), 0)
    assert np.argmax(got) == np.argmax(ref)
    assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < 0.05

    # Idempotent: the same import again is a no-op.
    mtime = (out / "model.onnx").stat().st_mtime
    r = moat_import(models, path, "--precision", "fp32", "--name", "tiny-qwen2")
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stderr
    assert (out / "model.onnx").stat().st_mtime == mtime
    assert not [n for n in leftovers(models) if n.startswith(".")]

    # The LM head computes the last logits_to_keep rows; the import checked it against the
    # unedited graph (K = 1) and an all-rows one (K > 1).
    import onnx
    assert report["import_version"] == 2
    assert report["lm_head"]["k1_max_abs_diff_vs_pruned"] == 0.0, report["lm_head"]
    assert report["lm_head"]["k_gt1_max_abs_diff_vs_all_rows"] < 1e-4, report["lm_head"]
    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    assert "logits_to_keep" in [i.name for i in graph.input]
    k3 = ortm.sess.run([ortm.o["logits"]], {**step_feed(ortm, ids), "logits_to_keep":
                                           np.array([3], dtype=np.int64)})[0]
    assert k3.shape[1] == 3 and np.allclose(k3[0, -1], got, atol=1e-4)

    # A model imported by version 1 (the builder's pruned head) is upgraded in place, in seconds,
    # without importing it again: the weights stay the same file.
    write_v1(out, path)
    data_inode = (out / "model.onnx.data").stat().st_ino if (out / "model.onnx.data").exists() \
        else None
    r = moat_import(models, path, "--precision", "fp32", "--name", "tiny-qwen2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "upgrading tiny-qwen2 from import version 1" in r.stderr, r.stderr
    assert "[2/8] load" not in r.stderr, r.stderr
    upgraded = json.loads((out / "import.json").read_text())
    assert upgraded["import_version"] == 2 and upgraded["upgraded"]["from_version"] == 1
    assert upgraded["lm_head"]["k1_max_abs_diff_vs_pruned"] == 0.0
    assert upgraded["key"] == report["key"]
    assert "\n[runtime]\n" in (out / "model.toml").read_text()
    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    assert "logits_to_keep" in [i.name for i in graph.input]
    if data_inode is not None:
        assert (out / "model.onnx.data").stat().st_ino == data_inode
    r = moat_import(models, path, "--precision", "fp32", "--name", "tiny-qwen2")
    assert r.returncode == 0 and "up to date" in r.stderr, r.stderr
    assert not [n for n in leftovers(models) if n.startswith(".")]


def step_feed(ortm, ids: list[int]) -> dict:
    """The feed of a prefill of `ids` on an empty cache."""
    feed = {ortm.o["input_ids"]: np.asarray([ids], dtype=np.int64),
            ortm.o["attention_mask"]: np.ones((1, len(ids)), dtype=np.int64)}
    for i, (k, v) in enumerate(ortm.empty_past()):
        feed[ortm.o["past_key"].format(layer=i)] = k
        feed[ortm.o["past_value"].format(layer=i)] = v
    return feed


def write_v1(out: Path, src: Path) -> None:
    """Turns an imported folder back into what import version 1 wrote: the builder's pruning
    pair (Gather(-1, axis 1) + Unsqueeze) before the LM head, and version 1's key."""
    import argparse

    import onnx
    from onnx import helper, numpy_helper

    import import_model
    import lm_head_rows
    m = onnx.load(str(out / "model.onnx"), load_external_data=False)
    g = m.graph
    sl = next(n for n in g.node if n.name == lm_head_rows.SLICE_NAME)
    neg = next(n for n in g.node if n.output[0] == sl.input[1])
    at = list(g.node).index(neg)
    for n in (neg, sl):
        g.node.remove(n)
    keep = [i for i in g.input if i.name != lm_head_rows.INPUT]
    del g.input[:]
    g.input.extend(keep)
    inits = [i for i in g.initializer if i.name != lm_head_rows.INPUT]
    del g.initializer[:]
    g.initializer.extend(inits)
    g.initializer.extend([numpy_helper.from_array(np.array(-1, dtype=np.int64), "v1/minus1"),
                          numpy_helper.from_array(np.array([1], dtype=np.int64), "v1/axes")])
    g.node.insert(at, helper.make_node("Gather", [sl.input[0], "v1/minus1"], ["v1/last"],
                                       name="/lm_head/prune/Gather", axis=1))
    g.node.insert(at + 1, helper.make_node("Unsqueeze", ["v1/last", "v1/axes"], [sl.output[0]],
                                           name="/lm_head/prune/Unsqueeze"))
    onnx.save_model(m, str(out / "model.onnx"))
    manifest = (out / "model.toml").read_text()
    (out / "model.toml").write_text(manifest[:manifest.index("\n[runtime]")] + "\n")
    report = json.loads((out / "import.json").read_text())
    args = argparse.Namespace(precision="fp32", block_size=128, template="auto",
                              context_length=2048)
    info = import_model.inspect_gguf(src)
    report["import_version"] = 1
    report["key"] = import_model.source_key(src.resolve(), info, args, 1)
    report.pop("lm_head", None)
    (out / "import.json").write_text(json.dumps(report))
    assert not lm_head_rows.has_k_input(onnx.load(str(out / "model.onnx"),
                                                  load_external_data=False))


def test_import_transformers_folder_llama(tmp_path):
    models = tmp_path / "models"
    r = moat_import(models, TINY_HF, "--precision", "int8", "--name", "tiny-llama-hf")
    assert r.returncode == 0, r.stdout + r.stderr
    out = models / "tiny-llama-hf"
    report = json.loads((out / "import.json").read_text())
    assert report["source"]["kind"] == "folder" and report["source"]["architecture"] == "llama"
    assert report["logits_check"]["top1_agreement"] >= 0.85
    # the model was trained with SPM and PSM FIM; it must not end up prefix-only
    assert report["template"]["chosen"] in ("spm", "psm")
    assert (out / "model.onnx").is_file() and (out / "tokenizer.json").is_file()
    listing = subprocess.run([str(moat_bin()), "model", "list"], capture_output=True, text=True,
                             env=dict(os.environ, MOAT_HOME=str(tmp_path)))
    assert listing.returncode == 0, listing.stderr
    assert "tiny-llama-hf" in listing.stdout


# -- bad input --------------------------------------------------------------------------------------

def expect_refusal(models: Path, src, needle: str, *extra):
    r = moat_import(models, src, "--precision", "fp32", *extra)
    assert r.returncode != 0, r.stdout + r.stderr
    assert needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert leftovers(models) == [], leftovers(models)


def test_refuses_folder_without_config(tmp_path):
    src = tmp_path / "empty-model"
    src.mkdir()
    (src / "model.safetensors").write_bytes(b"")
    expect_refusal(tmp_path / "models", src, "has no config.json")


def test_refuses_unsupported_architecture(tmp_path):
    src = tmp_path / "bert"
    shutil.copytree(TINY_HF, src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["model_type"] = "bert"
    (src / "config.json").write_text(json.dumps(cfg))
    expect_refusal(tmp_path / "models", src, "unsupported architecture 'bert'")


def test_refuses_bad_gguf_magic(tmp_path):
    src = tmp_path / "fake.gguf"
    src.write_bytes(b"GGML" + b"\0" * 1024)
    expect_refusal(tmp_path / "models", src, "is not a GGUF file")


def test_refuses_truncated_gguf(tmp_path, qwen_gguf):
    _, path = qwen_gguf
    src = tmp_path / "cut.gguf"
    data = path.read_bytes()
    src.write_bytes(data[: len(data) * 2 // 3])
    expect_refusal(tmp_path / "models", src, "is truncated")


def test_refuses_hash_mismatch(tmp_path, qwen_gguf):
    _, path = qwen_gguf
    expect_refusal(tmp_path / "models", path, "hash mismatch", "--sha256", "0" * 64)
