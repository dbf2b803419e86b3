#!/usr/bin/env python3
"""Replays a user writing real files against `moat serve` and records feedback as an editor would,
then prints `moat stats` for it: an acceptance rate of the model on your own code, measured through
the whole product (LSP, context, model, feedback records; docs/feedback.md).

For sampled lines of each file, the line is cut after its first word (the rest and every later
line stay as they are: fill-in-the-middle), ghost text is asked for (textDocument/inlineCompletion)
and the simulated user:
  * accepts it (and runs the item's command, as VS Code does) when the real line goes on with it;
  * otherwise types the real rest of the line (the server then records partial when the
    suggestion's first whole words were right, else dismissed).
The user never waits longer than the server takes; nothing is typed while a request runs.

Usage: simulate-feedback.py FILE... [--root DIR] [--moat BIN] [--model DIR] [--lines N] [--out DIR]
                            [--json]
Python 3 standard library only. Prints the `moat stats` report last.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from lsp_client import LspClient

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = {".py": "python", ".rs": "rust", ".ts": "typescript", ".js": "javascript", ".go": "go",
             ".java": "java", ".c": "c", ".h": "c", ".cpp": "cpp", ".tsx": "typescriptreact"}


class Lsp(LspClient):
    """Knows when the model is loaded (`moat/status` ready or error)."""

    def __init__(self, cmd: list[str], env: dict, log):
        self.ready = threading.Event()
        super().__init__(cmd, log, env)

    def on_notification(self, msg: dict):
        if msg.get("method") == "moat/status" and msg["params"].get("state") in ("ready", "error"):
            self.ready.set()


def position(text: str, offset: int) -> dict:
    """UTF-16 position of a character offset."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return {"line": line, "character": len(text[start:offset].encode("utf-16-le")) // 2}


class Doc:
    def __init__(self, lsp: Lsp, path: Path, text: str, language: str):
        self.lsp, self.uri, self.text, self.version = lsp, path.resolve().as_uri(), text, 1
        lsp.notify("textDocument/didOpen", {"textDocument": {
            "uri": self.uri, "languageId": language, "version": 1, "text": text}})

    def replace(self, start: int, end: int, new: str):
        change = {"range": {"start": position(self.text, start), "end": position(self.text, end)}, "text": new}
        self.text = self.text[:start] + new + self.text[end:]
        self.version += 1
        self.lsp.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version}, "contentChanges": [change]})


def cut_points(text: str, n: int, rng: random.Random) -> list[tuple[int, int]]:
    """(cursor, end of line) for up to n lines: the cursor after the line's indentation and first
    word, where the rest of the line has at least 4 characters."""
    points = []
    offset = 0
    for line in text.split("\n"):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        word = 0
        while word < len(stripped) and (stripped[word].isalnum() or stripped[word] == "_"):
            word += 1
        rest = stripped[word:]
        if word and len(rest.strip()) >= 4 and not stripped.startswith(("#", "//", "/*", "*")):
            points.append((offset + indent + word, offset + len(line)))
        offset += len(line) + 1
    rng.shuffle(points)
    return sorted(points[:n])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--moat", default=os.environ.get("MOAT_BIN", str(REPO / "target/release/moat")))
    ap.add_argument("--model", help="model folder (default: moat's default model)")
    ap.add_argument("--lines", type=int, default=20, help="sampled lines per file (default 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, help="feedback folder (default: a temporary one)")
    ap.add_argument("--root", type=Path, help="the workspace folder the server indexes for repository "
                    "context, as an editor's project folder (default: none)")
    ap.add_argument("--json", action="store_true", help="print `moat stats --json`")
    args = ap.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="moat-feedback-sim-"))
    env = dict(os.environ, MOAT_FEEDBACK="1", MOAT_FEEDBACK_DIR=str(out))
    cmd = [args.moat, "serve"] + (["--model", args.model] if args.model else [])
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "server.log", "ab")
    lsp = Lsp(cmd, env, log)
    root = args.root.resolve().as_uri() if args.root else None
    lsp.request("initialize", {
        "processId": os.getpid(), "rootUri": root,
        "capabilities": {"textDocument": {"inlineCompletion": {}}, "general": {"positionEncodings": ["utf-16"]}},
        "clientInfo": {"name": "simulate-feedback"},
        "initializationOptions": {"debounceMs": 0},
    })
    lsp.notify("initialized", {})
    lsp.ready.wait(300)
    rng = random.Random(args.seed)
    shown = accepted = 0
    for path in args.files:
        language = LANGUAGES.get(path.suffix)
        if language is None:
            print(f"skipped {path}: unknown language", file=sys.stderr)
            continue
        original = path.read_text(encoding="utf-8")
        doc = Doc(lsp, path, original, language)
        # Top to bottom: each line is whole again before the next is cut, so the offsets stay the
        # original's, and no edit lands above a suggestion whose outcome is still open.
        for cursor, end in cut_points(original, args.lines, rng):
            truth = original[cursor:end]
            doc.replace(cursor, end, "")
            result = lsp.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": doc.uri}, "position": position(doc.text, cursor),
                "context": {"triggerKind": 2}})
            items = (result or {}).get("items") or []
            text = items[0]["insertText"] if items else ""
            if text:
                shown += 1
            if text and truth.startswith(text):
                accepted += 1
                doc.replace(cursor, cursor, text)
                command = items[0].get("command")
                if command:
                    lsp.request("workspace/executeCommand",
                                {"command": command["command"], "arguments": command.get("arguments")})
                doc.replace(cursor + len(text), cursor + len(text), truth[len(text):])
            else:
                doc.replace(cursor, cursor, truth)
        lsp.notify("textDocument/didClose", {"textDocument": {"uri": doc.uri}})
        print(f"{path}: {shown} shown so far, {accepted} accepted", file=sys.stderr)
    lsp.close(timeout=30)
    stats = [args.moat, "stats", str(out)] + (["--json"] if args.json else [])
    return subprocess.call(stats)


if __name__ == "__main__":
    sys.exit(main())
