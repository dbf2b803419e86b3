#!/usr/bin/env python3
"""Eval of moat's "fill the body" code action on held-out functions from real code.

  build  makes the task set (tasks.jsonl): functions of 2-10 body lines from sources outside this
         project's training data (see README.md), sampled with a fixed seed, at most 4 per file;
  run    serves each task's file to the real `moat serve` over LSP with the function's body
         replaced by a stub (`pass`, `todo!()`, `throw new Error("not implemented")`), asks for
         the code action (textDocument/codeAction + codeAction/resolve) and scores the edit:
         exact match, edit similarity, parse rate (the server refuses an edit that does not
         parse), and the share of tasks whose file still passes the language's own check
         (`python -m py_compile`; `cargo check` on a copy of the crate; `tsc --noEmit` gives no
         more errors than on the original file, imports unresolved).

Usage:
  fill_body_eval.py build [--per-language 30] [--seed 14] [--out tasks.jsonl]
  nice -n 10 fill_body_eval.py run [--moat target/release/moat] [--model DIR] [--tasks tasks.jsonl]
                                   [--language python] [--limit N] [--json report.json]
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from lsp_client import LspClient  # noqa: E402
REGISTRY = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "registry" / "src"

# Held out for moat-cpu-4m (model-assets/moat-cpu-4m/MODEL_CARD.md "Held-out packages") and sorted
# after numbers.py (outside the tiny test models' corpus); not used by tests/eval.
PYTHON_SOURCES = ["os.py", "pickletools.py", "warnings.py", "concurrent/futures/_base.py",
                  "concurrent/futures/process.py", "concurrent/futures/thread.py"]
# typeid is a held-out crate of moat-cpu-4m; oorandom and dissimilar came into the registry with
# this project's dev-dependencies (criterion, expect-test). No dependencies: `cargo check` runs
# offline on a copy.
RUST_CRATES = ["typeid-1.0.3", "oorandom-11.1.5", "dissimilar-1.0.11"]
# @textlint/resolver is a held-out package of moat-cpu-4m; @xterm/xterm comes with code-server,
# installed by the VS Code e2e test (editors/.deps), not a corpus source.
TS_SOURCES = [
    "editors/vscode/node_modules/@textlint/resolver/src/**/*.ts",
    "editors/.deps/code-server-*/node_modules/code-server/lib/vscode/node_modules/@xterm/xterm/src/common/**/*.ts",
]

MAX_PER_FILE = 8
STUB = {"python": "pass", "rust": "todo!()", "typescript": 'throw new Error("not implemented");'}
LANGUAGE_ID = {"python": "python", "rust": "rust", "typescript": "typescript"}


# ---------------------------------------------------------------------------------------------
# build


def python_functions(path: Path, text: str):
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    lines = text.splitlines(keepends=True)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("test"):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # the docstring stays in the document
        if not body or body[0].lineno == node.lineno:
            continue
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for b in body for n in ast.walk(b)):
            continue
        first, last = body[0].lineno, body[-1].end_lineno
        if not 2 <= last - first + 1 <= 10:
            continue
        start = sum(len(l) for l in lines[: first - 1])
        end = sum(len(l) for l in lines[:last])
        end -= len(lines[last - 1]) - len(lines[last - 1].rstrip("\r\n"))
        yield node.name, start, end


BRACE_FN = {
    "rust": re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)[^;]*\{\s*$"),
    "typescript": re.compile(
        r"^(\s*)(?:export\s+)?(?:const\s+(?=\w+\s*=\s*(?:async\s*)?\())?(?:(?:public|private|protected|static|async|override)\s+)*"
        r"(?:function\s+)?(?!if\b|for\b|while\b|switch\b|catch\b|constructor\b)(\w+)\s*(?:<[^>]*>)?(?:=\s*(?:async\s*)?)?\([^;]*\)\s*(?::[^={;]+)?(?:=>\s*)?\{\s*$"
    ),
}


def brace_functions(language: str, text: str):
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for l in lines:
        offsets.append(offsets[-1] + len(l))
    pattern = BRACE_FN[language]
    for i, line in enumerate(lines):
        m = pattern.match(line)
        if not m or m.group(2).startswith("test"):
            continue
        indent = m.group(1)
        # The closing brace alone on a line at the header's indentation.
        for j in range(i + 1, min(i + 13, len(lines))):
            if lines[j].rstrip("\r\n") == f"{indent}}}":
                break
        else:
            continue
        body = lines[i + 1 : j]
        code = [l for l in body if l.strip() and not l.strip().startswith("//")]
        if not 2 <= len(body) <= 10 or len(code) < 2:
            continue
        if any(BRACE_FN[language].match(l) or "#[" in l for l in body):
            continue
        if len(indent) > 0 and language == "rust" and "mod tests" in text[: offsets[i]].split("\n}")[-1]:
            continue
        start = offsets[i + 1]
        end = offsets[j] - 1  # before the line break ending the last body line
        yield m.group(2), start, end


def build(args) -> int:
    rng = random.Random(args.seed)
    stdlib = Path(os.__file__).parent
    sources = {
        "python": [(stdlib / p, f"cpython/{p}") for p in PYTHON_SOURCES],
        "rust": [
            (p, p.relative_to(REGISTRY_DIR).as_posix())
            for c in RUST_CRATES
            for p in sorted((REGISTRY_DIR / c / "src").rglob("*.rs"))
            if p.name != "tests.rs"
        ],
        "typescript": [
            (Path(p), Path(p).relative_to(REPO).as_posix())
            for g in TS_SOURCES
            for p in sorted(glob.glob(str(REPO / g), recursive=True))
            if not p.endswith(".d.ts") and ".test." not in p
        ],
    }
    out = []
    for language, files in sources.items():
        candidates = []
        for path, label in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            fns = list(python_functions(path, text) if language == "python" else brace_functions(language, text))
            rng.shuffle(fns)
            for name, start, end in fns[:MAX_PER_FILE]:
                candidates.append((label, str(path), name, start, end, text))
        rng.shuffle(candidates)
        for label, path, name, start, end, text in candidates[: args.per_language]:
            out.append({
                "id": f"{language}/{label}:{name}",
                "language": language,
                "path": path,
                "source": label,
                "name": name,
                "body_start": len(text[:start].encode("utf-8")),
                "body_end": len(text[:end].encode("utf-8")),
                "expected": text[start:end],
            })
        print(f"{language}: {min(len(candidates), args.per_language)} tasks from {len(files)} files "
              f"({len(candidates)} candidates)", file=sys.stderr)
    with open(args.out, "w", encoding="utf-8") as f:
        for t in out:
            f.write(json.dumps(t) + "\n")
    print(f"wrote {len(out)} tasks to {args.out}", file=sys.stderr)
    return 0


def registry_dir() -> Path:
    dirs = sorted(REGISTRY.glob("*/")) if REGISTRY.is_dir() else []
    for d in dirs:
        if all((d / c).is_dir() for c in RUST_CRATES):
            return d
    return dirs[0] if dirs else REGISTRY


REGISTRY_DIR = registry_dir()


# ---------------------------------------------------------------------------------------------
# run: positions and scores (the LSP client is scripts/lsp_client.py)


def position(text: str, offset: int) -> dict:
    """UTF-8 positions (the server negotiates utf-8 when offered)."""
    before = text[:offset]
    line = before.count("\n")
    col = len(before[before.rfind("\n") + 1 :].encode("utf-8"))
    return {"line": line, "character": col}


def offset(text: str, pos: dict) -> int:
    lines = text.split("\n")
    start = sum(len(l) + 1 for l in lines[: pos["line"]])
    line = lines[pos["line"]] if pos["line"] < len(lines) else ""
    return start + len(line.encode("utf-8")[: pos["character"]].decode("utf-8", errors="ignore"))


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def normalize(body: str) -> str:
    lines = [l.rstrip() for l in body.strip("\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines).strip()


def make_stubbed(task: dict, original: str) -> tuple[str, int, int]:
    raw = original.encode("utf-8")
    start = len(raw[: task["body_start"]].decode("utf-8"))
    end = len(raw[: task["body_end"]].decode("utf-8"))
    line_start = original.rfind("\n", 0, start) + 1
    indent = original[line_start:start] + re.match(r"[ \t]*", original[start:]).group(0)
    stubbed = original[:line_start] + indent + STUB[task["language"]] + original[end:]
    stub_at = line_start + len(indent)
    return stubbed, stub_at, line_start


class Checker:
    """The language's own check of a whole file."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.crates: dict[str, Path] = {}
        self.tsc = REPO / "editors/vscode/node_modules/typescript/bin/tsc"
        self.ts_baseline: dict[str, int] = {}
        self.rust_baseline: dict[Path, bool] = {}

    def python(self, text: str) -> bool:
        f = self.tmp / "check.py"
        f.write_text(text, encoding="utf-8")
        return subprocess.run([sys.executable, "-m", "py_compile", str(f)], capture_output=True).returncode == 0

    def _crate(self, path: str) -> tuple[Path, Path]:
        rel = Path(path).relative_to(REGISTRY_DIR)
        crate = rel.parts[0]
        if crate not in self.crates:
            dst = self.tmp / "crates" / crate
            shutil.copytree(REGISTRY_DIR / crate, dst)
            toml = dst / "Cargo.toml"
            # Dev-dependencies are not needed to check the library (and may not be offline).
            kept, skipping = [], False
            for line in toml.read_text().splitlines():
                if line.startswith("["):
                    skipping = line.startswith("[dev-dependencies")
                if not skipping:
                    kept.append(line)
            toml.write_text("\n".join(kept) + "\n")
            self.crates[crate] = dst
        return self.crates[crate], self.crates[crate] / Path(*rel.parts[1:])

    def rust(self, task: dict, text: str) -> bool | None:
        """`cargo check` of the crate with the file's text; None when the original fails it."""
        crate, file = self._crate(task["path"])
        if crate not in self.rust_baseline:
            self.rust_baseline[crate] = self._cargo_check(crate)
            if not self.rust_baseline[crate]:
                print(f"warning: {crate.name} fails cargo check as it is; its tasks are not checked", file=sys.stderr)
        if not self.rust_baseline[crate]:
            return None
        original = file.read_text(encoding="utf-8")
        file.write_text(text, encoding="utf-8")
        try:
            return self._cargo_check(crate)
        finally:
            file.write_text(original, encoding="utf-8")

    def _cargo_check(self, crate: Path) -> bool:
        r = subprocess.run(["cargo", "check", "--offline", "--quiet", "--lib"], cwd=crate, capture_output=True,
                           env={**os.environ, "CARGO_TARGET_DIR": str(crate / "target")})
        return r.returncode == 0

    def _tsc_errors(self, text: str) -> int:
        f = self.tmp / "check.ts"
        f.write_text(text, encoding="utf-8")
        r = subprocess.run(["node", str(self.tsc), "--noEmit", "--noResolve", "--skipLibCheck", "--target", "es2022",
                            "--lib", "es2022,dom", "--pretty", "false", str(f)], capture_output=True, text=True)
        return len(re.findall(r"error TS\d+", r.stdout))

    def typescript(self, task: dict, original: str, text: str) -> bool:
        if task["path"] not in self.ts_baseline:
            self.ts_baseline[task["path"]] = self._tsc_errors(original)
        return self._tsc_errors(text) <= self.ts_baseline[task["path"]]


def run(args) -> int:
    tasks = [json.loads(l) for l in open(args.tasks, encoding="utf-8") if l.strip()]
    if args.language:
        tasks = [t for t in tasks if t["language"] == args.language]
    if args.limit:
        tasks = tasks[: args.limit]
    tmp = Path(tempfile.mkdtemp(prefix="moat-fill-eval-"))
    cmd = [args.moat, "serve"] + (["--model", args.model] if args.model else [])
    lsp = LspClient(cmd, open(tmp / "moat.log", "wb"))
    lsp.request("initialize", {
        "processId": os.getpid(),
        "rootUri": None,
        "capabilities": {"general": {"positionEncodings": ["utf-8"]}, "window": {"showMessage": {}}},
        "initializationOptions": {"repoContext": False},
    })
    lsp.notify("initialized", {})
    status = None
    while status not in ("ready", "error"):
        p = lsp.wait("moat/status", 300)
        if p is None:
            print("the model did not load", file=sys.stderr)
            return 1
        status = p["state"]
    checker = Checker(tmp)
    results = []
    for n, task in enumerate(tasks):
        original = Path(task["path"]).read_text(encoding="utf-8")
        stubbed, stub_at, _ = make_stubbed(task, original)
        uri = f"file://{tmp}/task{n}/{Path(task['path']).name}"
        lsp.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": LANGUAGE_ID[task["language"]], "version": 1, "text": stubbed}})
        at = position(stubbed, stub_at + 1)
        r = {"id": task["id"], "language": task["language"], "offered": False, "edited": False,
             "exact": False, "edit_sim": 0.0, "check": False, "ms": 0, "written": "", "refusal": ""}
        start = time.monotonic()
        actions = lsp.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": {"start": at, "end": at}, "context": {"diagnostics": []}}) or []
        fill = next((a for a in actions if "fill the body" in a["title"]), None)
        if fill:
            r["offered"] = True
            resolved = lsp.request("codeAction/resolve", fill, timeout=300)
            r["ms"] = int((time.monotonic() - start) * 1000)
            edits = ((resolved.get("edit") or {}).get("changes") or {}).get(uri)
            if edits:
                new = stubbed
                for e in sorted(edits, key=lambda e: offset(stubbed, e["range"]["start"]), reverse=True):
                    s, t = offset(stubbed, e["range"]["start"]), offset(stubbed, e["range"]["end"])
                    new = new[:s] + e["newText"] + new[t:]
                r["edited"] = True
                # The written body: the new text between the stub's start and what followed it.
                tail = stubbed[stub_at + len(STUB[task["language"]]) :]
                line_start = stubbed.rfind("\n", 0, stub_at) + 1
                written = new[line_start : len(new) - len(tail)] if new.endswith(tail) else new
                r["written"] = written
                expected, got = normalize(task["expected"]), normalize(written)
                r["exact"] = expected == got
                r["edit_sim"] = 1 - levenshtein(expected, got) / max(len(expected), len(got), 1)
                if task["language"] == "python":
                    r["check"] = checker.python(new)
                elif task["language"] == "rust":
                    r["check"] = checker.rust(task, new)
                else:
                    r["check"] = checker.typescript(task, original, new)
            else:
                msg = lsp.wait("window/showMessage", 5)
                r["refusal"] = (msg or {}).get("message", "")
        lsp.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        results.append(r)
        verdict = ("exact" if r["exact"] else f"sim {r['edit_sim']:.2f}") if r["edited"] else (
            "refused" if r["offered"] else "not offered")
        check = " check ok" if r["check"] else ""
        print(f"{n + 1}/{len(tasks)} {task['id']}: {verdict}{check} {r['ms']} ms", file=sys.stderr)
    lsp.close()
    summary = {}
    for language in sorted({r["language"] for r in results}) + ["overall"]:
        rs = [r for r in results if language in ("overall", r["language"])]
        n = len(rs)
        ms = sorted(r["ms"] for r in rs if r["offered"])
        summary[language] = {
            "tasks": n,
            "offered": sum(r["offered"] for r in rs) / n,
            "exact_match": sum(r["exact"] for r in rs) / n,
            "edit_similarity": sum(r["edit_sim"] for r in rs) / n,
            "parse_rate": sum(r["edited"] for r in rs) / n,
            # Over the tasks whose original file passes the check (all, unless a warning said so).
            "check_pass": sum(bool(r["check"]) for r in rs) / max(1, sum(r["check"] is not None for r in rs)),
            "p50_ms": ms[len(ms) // 2] if ms else None,
        }
    print("| language | tasks | offered | exact match | edit sim | parses | passes check | p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for language, s in summary.items():
        print(f"| {language} | {s['tasks']} | {s['offered']:.0%} | {s['exact_match']:.1%} | {s['edit_similarity']:.3f} | "
              f"{s['parse_rate']:.1%} | {s['check_pass']:.1%} | {s['p50_ms']} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"moat": args.moat, "model": args.model, "tasks": args.tasks, "summary": summary,
                       "results": results}, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--per-language", type=int, default=30)
    b.add_argument("--seed", type=int, default=14)
    b.add_argument("--out", default=str(HERE / "tasks.jsonl"))
    r = sub.add_parser("run")
    r.add_argument("--moat", default=str(REPO / "target/release/moat"))
    r.add_argument("--model", default=None, help="model folder (default: the server's default model)")
    r.add_argument("--tasks", default=str(HERE / "tasks.jsonl"))
    r.add_argument("--language")
    r.add_argument("--limit", type=int)
    r.add_argument("--json")
    args = ap.parse_args()
    return build(args) if args.cmd == "build" else run(args)


if __name__ == "__main__":
    sys.exit(main())
