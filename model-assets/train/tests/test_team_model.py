"""A team's own model, end to end through the real `moat` binary: `moat dataset build` on a
fixture repository with realistic FAKE secrets, `moat finetune` of the tiny pipeline model
(moat-cpu-4m, a real Llama checkpoint with FIM tokens) for a few steps, and the result served by
`moat serve` in a workspace whose `.moat.toml` names it. Bad input must fail with a message that
names the problem and leave nothing half-written: a path that is not a repository, an empty
repository, a data set of another tokenizer, an interrupted fine-tune.

    cd model-assets/train && .venv/bin/python -m pytest tests/test_team_model.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from moat_binary import moat_bin

HERE = Path(__file__).resolve().parent.parent
REPO = HERE.parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "team-repo"
TINY = REPO / "model-assets" / "moat-cpu-4m"
OTHER_TOKENIZER = REPO / "model-assets" / "tiny-llama"

if os.environ.get("MOAT_REQUIRE_TRAINING_STACK"):
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
else:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")

from tokenizers import Tokenizer  # noqa: E402

# Every secret planted in the fixture (FAKE, but in the formats real ones have). None may
# appear anywhere in a data set, its report included.
PLANTED = [
    "Xq7mR2vLp9sT4wZk", "AKIAQZ7XK3MPL2RTV9WD", "d8Fj2kLq9Zx4Rv7Tp1Wm6Ns3Hb5Gc0Ye8Ua2Io4P",
    "sk_live_51Hq8ZpK2mXvR7tLw9NcYb4Jd", "q9Zr4Lw2Xv9Tn6Bp3Ks7Hd1F", "mZ4q8Rv2Lx7Kp3Wt9Nb6Hc1Jd5Fg0Ys",
    "ghp_R8mZ2kQ7xL4vN9tP3wB6yC1dF5gH0jK2sA7e", "sk-proj-T4vX8mQ2kZ7rL9pW3nB6yC1dF5gH0jKsA2e",
    "sk-ant-api03-Zq8Rm2Lx7Kp3Wt9Nb6Hc1Jd5Fg0YsUa4Ie", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    "Zq8Rm2Lx7Kp3Wt9Nb6Hc1Jd5Fg0YsUa4", "vN3qX8kR2mL7wT4pZ9bC6yH1dF5gJ0sK",
    "AIzaSyD4kR8mX2qL7vN9tP3wB6yC1dF5gH0jKsA", "Tr0ub4dor&3xyzzy", "h7Kq2Zx9Lm4Vr8Tp",
    "Zx9Lm4Vr8Tph7Kq2", "Lm4Vr8Tph7Kq2Zx9Qw3Er5Ty", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU",
    "glpat-Kq2Zx9Lm4Vr8Tph7Qw3E", "Vr8Tp-h7Kq2-Zx9Lm",
    "MIIEowIBAAKCAQEAv5x0ZpYk3N8zQ1bV2c4R7s9tU0wXyZaBcDeFgHiJkLmNoPqR",
    "q8Zr4Lw2Xv9Tn6Bp3Ks7Hd1Fj5Mc0Ya", "Qw3Er5Ty7Ui9Op1As3Df", "4f9c2e7a1b8d4e6f9a3c5b7d2e1f0a8c",
]
# Ordinary code of the same files, which must survive.
ORDINARY = [
    "def database_timeout(default: int = 30) -> int:", "def total_due(self, invoice_ids",
    "pub fn balance_of(&self, account: &str) -> i64 {", "function formatCents(cents) {",
    "rsync -a build/", 'host = "db.internal"', '"replicas": 3,',
]


def ort_library() -> str:
    """ONNX Runtime for moat: ORT_DYLIB_PATH, else the copy in this venv's onnxruntime wheel
    (MOAT_HOME points at a test folder, where moat's own install is not)."""
    if os.environ.get("ORT_DYLIB_PATH"):
        return os.environ["ORT_DYLIB_PATH"]
    import onnxruntime
    capi = Path(onnxruntime.__file__).parent / "capi"
    return str(sorted(capi.glob("libonnxruntime.so*"))[-1])


def env(home: Path) -> dict:
    e = dict(os.environ, MOAT_PYTHON=sys.executable, MOAT_HOME=str(home),
             ORT_DYLIB_PATH=ort_library())
    e.pop("MOAT_MODEL", None)
    return e


def moat(home: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([str(moat_bin()), *map(str, args)], capture_output=True, text=True,
                          env=env(home), timeout=timeout)


def git_repo(src: Path | None, dest: Path) -> Path:
    if src is not None:
        shutil.copytree(src, dest)
    else:
        dest.mkdir(parents=True)
    run = lambda *a: subprocess.run(["git", "-C", str(dest), *a], check=True,  # noqa: E731
                                    capture_output=True)
    run("init", "-q")
    if src is not None:
        run("add", "-A")
        run("-c", "user.email=test@example.com", "-c", "user.name=test", "commit", "-q", "-m", "x")
    return dest


def everything_in(ds: Path, tokenizer: Path) -> str:
    """All text a data set holds: its files, and its samples decoded."""
    tok = Tokenizer.from_file(str(tokenizer))
    parts = []
    for p in sorted(ds.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".jsonl":
            for line in p.read_text().splitlines():
                parts.append(tok.decode(json.loads(line)["ids"], skip_special_tokens=False))
        parts.append(p.read_text())
    return "\n".join(parts)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("team")


@pytest.fixture(scope="module")
def dataset(work) -> Path:
    repo = git_repo(FIXTURE, work / "billing")
    out = work / "ds"
    r = moat(work / "home", "dataset", "build", repo, "--out", out, "--base", TINY,
             "--heldout", "0.2", "--seq-len", "512")
    assert r.returncode == 0, r.stderr
    return out


def test_no_secret_survives_and_code_is_kept(dataset):
    text = everything_in(dataset, TINY / "tokenizer.json")
    survived = [s for s in PLANTED if s in text]
    assert not survived, f"secrets in the data set: {survived}"
    missing = [c for c in ORDINARY if c not in text]
    assert not missing, f"ordinary code lost: {missing}"
    report = json.loads((dataset / "report.json").read_text())
    assert report["dropped_before_curation"].get("secret_file") == 2  # .env, deploy/id_ed25519
    assert sum(report["secrets_scrubbed"].values()) >= 18, report["secrets_scrubbed"]
    assert report["kept_files"] == 7
    assert report["samples"]["train"] > 0
    ds = json.loads((dataset / "dataset.json").read_text())
    assert ds["base"]["name"] == "moat-cpu-4m"
    # The samples are the model's own SPM prompt: <fim_prefix><fim_suffix>suffix<fim_middle>...
    tok = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    first = json.loads((dataset / "train.jsonl").read_text().splitlines()[0])["ids"]
    assert first[:2] == [tok.token_to_id("<|fim_prefix|>"), tok.token_to_id("<|fim_suffix|>")]
    assert first[-1] == tok.token_to_id("<|endoftext|>")


def test_dataset_build_is_deterministic(work, dataset):
    repo = work / "billing"
    again = work / "ds-again"
    r = moat(work / "home", "dataset", "build", repo, "--out", again, "--base", TINY,
             "--heldout", "0.2", "--seq-len", "512")
    assert r.returncode == 0, r.stderr
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for f in files:
        assert (dataset / f).read_bytes() == (again / f).read_bytes(), f


def test_accepted_suggestions_become_samples(work, dataset, tmp_path):
    """`--feedback`: accepted suggestions recorded with source text (docs/feedback.md) are extra
    FIM samples; ones without text are counted, dismissed ones ignored; secrets in them are
    scrubbed like the repository's."""
    base = {"v": 1, "kind": "suggestion", "ts_ms": 1, "session": "s", "method": "inline",
            "client": "test", "language": "python", "model": "m", "signal": "command",
            "latency_ms": 100, "prompt_tokens": 10, "snippets": 0, "shown_chars": 12,
            "shown_lines": 1, "decided_after_ms": 500}
    records = [
        dict(base, id=1, outcome="accepted", accepted_chars=12, source={
            "path": "app/fees.py", "prefix": "def late_fee(invoice):\n    ",
            "suffix": "\n", "text": "return invoice.amount_due * LATE_FEE_RATE"}),
        dict(base, id=2, outcome="accepted", accepted_chars=12, source={
            "path": "app/keys.py", "prefix": "STRIPE = ", "suffix": "\n",
            "text": '"sk_live_51Hq8ZpK2mXvR7tLw9NcYb4Jd"'}),
        dict(base, id=3, outcome="accepted", accepted_chars=12),
        dict(base, id=4, outcome="dismissed", accepted_chars=0, source={
            "path": "app/x.py", "prefix": "x = ", "suffix": "", "text": "never_kept()"}),
    ]
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "ds"
    r = moat(work / "home", "dataset", "build", work / "billing", "--out", out, "--base", TINY,
             "--heldout", "0.2", "--seq-len", "512", "--feedback", feedback)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["feedback_samples"] == 2 and report["feedback_without_text"] == 1, report
    text = everything_in(out, TINY / "tokenizer.json")
    assert "return invoice.amount_due * LATE_FEE_RATE" in text
    assert "never_kept" not in text
    assert "sk_live_51Hq8ZpK2mXvR7tLw9NcYb4Jd" not in text


def test_a_folder_of_a_repository_and_recent_files(work, dataset):
    """A folder inside a repository gives only its own files; `--recent-days` counts files
    changed since N days before HEAD `--recent-weight` times (all of them here: one commit)."""
    out = work / "ds-app"
    r = moat(work / "home", "dataset", "build", work / "billing" / "app", "--out", out, "--base",
             TINY, "--heldout", "0", "--seq-len", "512", "--recent-days", "30",
             "--recent-weight", "3")
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["tracked_files"] == 2 and report["repositories"][0]["recent_files"] == 2
    paths = [json.loads(l)["path"] for l in (out / "train.jsonl").read_text().splitlines()]
    assert sorted(set(paths)) == ["client.py", "settings.py"]
    assert len(paths) == 6  # 2 files, 3 cursors each


def test_bad_repositories_are_refused(work):
    home = work / "home"
    plain = work / "plain"
    plain.mkdir()
    (plain / "main.py").write_text("print('hello')\n" * 5)
    r = moat(home, "dataset", "build", plain, "--out", work / "bad1", "--base", TINY)
    assert r.returncode != 0 and "is not a git repository" in r.stderr, r.stderr
    assert not (work / "bad1").exists()
    empty = git_repo(None, work / "empty")
    r = moat(home, "dataset", "build", empty, "--out", work / "bad2", "--base", TINY)
    assert r.returncode != 0 and "no tracked files" in r.stderr, r.stderr
    assert not (work / "bad2").exists()
    r = moat(home, "dataset", "build", work / "no-such-folder", "--out", work / "bad3",
             "--base", TINY)
    assert r.returncode != 0 and "not a folder" in r.stderr, r.stderr
    # Nothing staged is left behind next to the output.
    assert not [p for p in work.iterdir() if p.name.startswith(".moat-dataset-")]


def test_a_dataset_of_another_tokenizer_is_refused(work, dataset):
    home = work / "home-tok"
    r = moat(home, "finetune", "--data", dataset, "--base", OTHER_TOKENIZER, "--out", "wrong",
             "--steps", "1")
    assert r.returncode != 0
    assert "tokenizer" in r.stderr and "Rebuild it" in r.stderr, r.stderr
    assert not (home / "models" / "wrong").exists()


def test_an_interrupted_finetune_registers_nothing(work, dataset):
    home = work / "home-int"
    proc = subprocess.Popen([str(moat_bin()), "finetune", "--data", str(dataset), "--out",
                             "halfway", "--budget", "10m", "--batch-tokens", "256"],
                            stderr=subprocess.PIPE, text=True, env=env(home),
                            start_new_session=True)
    seen = []
    deadline = time.time() + 600
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if "step 1 " in line or time.time() > deadline:
            break
    assert any("step 1 " in l for l in seen), "".join(seen[-20:])
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode != 0
    models = home / "models"
    # The Python side cleans its staging folder on the way out; give it a moment.
    for _ in range(60):
        if not models.exists() or not any(p.name.startswith(".import-") for p in models.iterdir()):
            break
        time.sleep(1)
    left = sorted(p.name for p in models.iterdir()) if models.exists() else []
    assert left == [], f"left in the models folder: {left}\n{rest[-2000:]}"


class Lsp:
    """A minimal LSP client over stdio: enough to see which model `moat serve` loads."""

    def __init__(self, home: Path, root: Path):
        self.proc = subprocess.Popen([str(moat_bin()), "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env(home))
        self.id = 0
        self.statuses: list[dict] = []
        self.root = root

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def read(self) -> dict:
        assert self.proc.stdout is not None
        length = 0
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("moat serve closed its output")
            line = line.strip()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.proc.stdout.read(length))

    def request(self, method: str, params) -> dict:
        self.id += 1
        self.send({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params})
        while True:
            msg = self.read()
            if msg.get("id") == self.id and "method" not in msg:
                return msg
            self.note(msg)

    def note(self, msg: dict) -> None:
        if msg.get("method") == "moat/status":
            self.statuses.append(msg["params"])
        if "id" in msg and "method" in msg:  # a request from the server: answer it
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    def wait_status(self, state: str, contains: str, timeout: float = 120) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            for s in self.statuses:
                if s["state"] == state and contains in s["message"]:
                    self.statuses.remove(s)
                    return s
            self.note(self.read())
        raise AssertionError(f"no {state} status naming {contains}: {self.statuses}")

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.send({"jsonrpc": "2.0", "method": "exit"})
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def test_finetune_exports_a_model_the_workspace_serves(work, dataset):
    home = work / "home-ft"
    r = moat(home, "finetune", "--data", dataset, "--out", "billing-tiny", "--steps", "3",
             "--budget", "5m", "--batch-tokens", "512")
    assert r.returncode == 0, r.stderr[-3000:]
    model = home / "models" / "billing-tiny"
    assert (model / "model.toml").is_file()
    record = json.loads((model / "finetune.json").read_text())
    assert record["steps"] == 3 and record["tokens_seen"] > 0, record
    assert record["base"]["name"] == "moat-cpu-4m"
    # The base's tokenizer, byte for byte: the same data set fits the fine-tuned model.
    assert (model / "tokenizer.json").read_bytes() == (TINY / "tokenizer.json").read_bytes()
    assert json.loads(r.stdout.strip().splitlines()[-1])["model"] == str(model)
    # Only the finished model is in the models folder.
    assert sorted(p.name for p in (home / "models").iterdir()) == ["billing-tiny"]

    # A workspace chooses it in .moat.toml; `moat serve` loads it, then switches to another
    # model when the file changes, without a restart.
    ws = work / "workspace"
    ws.mkdir()
    (ws / ".moat.toml").write_text('model = "billing-tiny"\n')
    (ws / "ledger.py").write_text("def add(a, b):\n    return a + b\n")
    lsp = Lsp(home, ws)
    try:
        lsp.request("initialize", {"processId": None, "rootUri": ws.as_uri(),
                                   "capabilities": {}, "initializationOptions": {"repoContext": False}})
        lsp.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        lsp.wait_status("ready", "billing-tiny")
        uri = (ws / "ledger.py").as_uri()
        lsp.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1,
            "text": (ws / "ledger.py").read_text()}}})
        reply = lsp.request("textDocument/completion", {
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}})
        assert "error" not in reply, reply
        shutil.copytree(TINY, ws / "models" / "base", ignore=shutil.ignore_patterns("hf"))
        (ws / ".moat.toml").write_text('model = "./models/base"\n')
        lsp.send({"jsonrpc": "2.0", "method": "textDocument/didSave",
                  "params": {"textDocument": {"uri": (ws / ".moat.toml").as_uri()}}})
        lsp.wait_status("ready", "moat-cpu-4m")
    finally:
        lsp.close()
