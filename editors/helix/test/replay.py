#!/usr/bin/env python3
"""Protocol-level test of moat as Helix sees it (Helix has no inline completion and is not
installable here, so this replays what Helix 25.x sends and does, against the real binary).

What Helix does (helix-term/src/handlers/completion*.rs, helix-term/src/ui/completion.rs,
helix-lsp/src/client.rs and helix-lsp/src/lib.rs in Helix 25.07):

* initialize: its client capabilities (no inlineCompletion; positionEncodings
  ["utf-8", "utf-32", "utf-16"]), then `initialized`, then didChangeConfiguration with the
  server's `config` table from languages.toml;
* didOpen, then one incremental didChange per keystroke;
* automatic completion only when the `completion-trigger-len` (2) characters before the cursor
  are word characters, after `completion-timeout` (250 ms) without typing; Ctrl-x asks at once
  (a manual trigger, needed on a blank line); context.triggerKind = Invoked (1); while the list
  is incomplete, each further keystroke asks again (TriggerForIncompleteCompletions, 3);
* the menu opens with nothing selected, fuzzy-filtered by the word before the cursor against
  filterText; Tab selects (and previews) the first item, Enter accepts;
* accepting a plain-text item with a textEdit: the edit's range is turned into offsets relative to
  the cursor, and that range of the document is replaced by newText (multi-line as is), then the
  change goes to the server as a didChange.

Each case checks that the buffer after accepting equals the typed text + the suggestion that a
second, independent moat process gives for the same text and cursor through
textDocument/inlineCompletion (the model is deterministic).

Usage: replay.py [--moat BIN] [--model DIR] [-k NAME]
Prints "ok - NAME" / "not ok - NAME: why" per case and "N passed, M failed" last.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))
from lsp_client import LspClient, LspError  # noqa: E402

WAIT = 10.0  # seconds: the most any single wait lasts

HELIX_CAPABILITIES = {
    "workspace": {
        "configuration": True,
        "didChangeConfiguration": {"dynamicRegistration": False},
        "workspaceFolders": True,
        "applyEdit": True,
        "symbol": {"dynamicRegistration": False, "symbolKind": {"valueSet": list(range(1, 27))}},
        "executeCommand": {"dynamicRegistration": False},
        "inlayHint": {"refreshSupport": False},
        "workspaceEdit": {
            "documentChanges": True,
            "resourceOperations": ["create", "rename", "delete"],
            "failureHandling": "abort",
            "normalizesLineEndings": False,
        },
        "didChangeWatchedFiles": {"dynamicRegistration": True, "relativePatternSupport": True},
        "fileOperations": {
            "willCreate": True,
            "didCreate": True,
            "willRename": True,
            "didRename": True,
            "willDelete": True,
            "didDelete": True,
        },
        "diagnostic": {"refreshSupport": True},
    },
    "textDocument": {
        "completion": {
            "completionItem": {
                "snippetSupport": True,
                "resolveSupport": {"properties": ["documentation", "detail", "additionalTextEdits"]},
                "insertReplaceSupport": True,
                "deprecatedSupport": True,
                "tagSupport": {"valueSet": [1]},
            },
            "completionItemKind": {},
        },
        "hover": {"contentFormat": ["markdown"]},
        "signatureHelp": {
            "signatureInformation": {
                "documentationFormat": ["markdown"],
                "parameterInformation": {"labelOffsetSupport": True},
                "activeParameterSupport": True,
            }
        },
        "rename": {"dynamicRegistration": False, "prepareSupport": True, "honorsChangeAnnotations": False},
        "formatting": {"dynamicRegistration": False},
        "codeAction": {
            "codeActionLiteralSupport": {
                "codeActionKind": {
                    "valueSet": [
                        "",
                        "quickfix",
                        "refactor",
                        "refactor.extract",
                        "refactor.inline",
                        "refactor.rewrite",
                        "source",
                        "source.organizeImports",
                        "source.fixAll",
                    ]
                }
            },
            "isPreferredSupport": True,
            "disabledSupport": True,
            "dataSupport": True,
            "resolveSupport": {"properties": ["edit", "command"]},
        },
        "diagnostic": {"dynamicRegistration": False, "relatedDocumentSupport": True},
        "publishDiagnostics": {"versionSupport": True, "tagSupport": {"valueSet": [1, 2]}},
        "inlayHint": {"dynamicRegistration": False},
        "documentLink": {"dynamicRegistration": False, "tooltipSupport": False},
        "callHierarchy": {"dynamicRegistration": False},
        "documentSymbol": {
            "dynamicRegistration": False,
            "symbolKind": {"valueSet": list(range(1, 27))},
            "hierarchicalDocumentSymbolSupport": False,
        },
    },
    "window": {
        "showMessage": {"messageActionItem": {"additionalPropertiesSupport": True}},
        "workDoneProgress": True,
        "showDocument": {"support": True},
    },
    "general": {"positionEncodings": ["utf-8", "utf-32", "utf-16"]},
}

# What an inline-completion client (VS Code) offers: the independent reference server.
REFERENCE_CAPABILITIES = {
    "textDocument": {"inlineCompletion": {"dynamicRegistration": False}},
    "general": {"positionEncodings": ["utf-16"]},
}


class Failure(Exception):
    pass


def char_is_word(ch: str) -> bool:
    # helix-core chars::char_is_word
    return ch.isalnum() or ch == "_"


# ---------------------------------------------------------------------------------------------
# Positions: LSP (line, character in an encoding) <-> offsets in a str (code points, like a Rope)


def line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def units(s: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(s.encode("utf-8"))
    if encoding == "utf-16":
        return len(s.encode("utf-16-le")) // 2
    return len(s)


def to_position(text: str, offset: int, encoding: str) -> dict:
    starts = line_starts(text)
    line = max(i for i, s in enumerate(starts) if s <= offset)
    return {"line": line, "character": units(text[starts[line] : offset], encoding)}


def to_offset(text: str, pos: dict, encoding: str) -> int:
    starts = line_starts(text)
    if pos["line"] >= len(starts):
        raise Failure(f"position {pos} is past the end of the document")
    start = starts[pos["line"]]
    end = starts[pos["line"] + 1] - 1 if pos["line"] + 1 < len(starts) else len(text)
    count = 0
    for i in range(start, end + 1):
        if count == pos["character"]:
            return i
        if i == end:
            break
        count += units(text[i], encoding)
    raise Failure(f"position {pos} does not fall on a character boundary ({encoding})")


# ---------------------------------------------------------------------------------------------
# A minimal LSP client over the server's stdio


class Server(LspClient):
    def __init__(self, cmd: list[str], log_path: Path, env: dict | None = None):
        self.log = open(log_path, "ab")
        full_env = {k: v for k, v in os.environ.items() if k != "MOAT_TEST_LOAD_DELAY_MS"}
        full_env.update(env or {})
        self.encoding = "utf-16"
        self.status: list[dict] = []
        self.config: dict = {}
        super().__init__(cmd, self.log, full_env)

    def on_notification(self, msg: dict):
        if msg.get("method") == "moat/status":
            self.status.append(msg["params"])
        super().on_notification(msg)

    def answer(self, msg: dict):
        if msg["method"] == "workspace/configuration":
            return [self.config for _ in msg["params"].get("items", [])]
        return None

    def wait_response(self, rid: int, q: queue.Queue, timeout: float = WAIT):
        try:
            return super().wait_response(rid, q, timeout)
        except LspError as e:
            raise Failure(str(e)) from None

    def request(self, method: str, params, timeout: float = WAIT):
        return super().request(method, params, timeout)

    def initialize(self, capabilities: dict, config: dict, root: Path, client_name: str):
        self.config = config
        result = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}],
                "rootPath": str(root),
                "rootUri": root.as_uri(),
                "initializationOptions": config,
                "capabilities": capabilities,
                "clientInfo": {"name": client_name, "version": "25.07.1 (replay)"},
            },
        )
        self.capabilities = result["capabilities"]
        self.encoding = self.capabilities.get("positionEncoding", "utf-16")
        self.notify("initialized", {})
        # Helix sends the `config` table again once initialized.
        self.notify("workspace/didChangeConfiguration", {"settings": config})
        return result

    def wait_ready(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if any(s.get("state") == "ready" for s in self.status):
                return
            if any(s.get("state") == "error" for s in self.status):
                raise Failure(f"moat/status error: {self.status}")
            time.sleep(0.02)
        raise Failure(f"the model did not get ready within {WAIT} s (status: {self.status})")

    def close(self):
        try:
            return super().close(timeout=5)
        finally:
            self.log.close()


# ---------------------------------------------------------------------------------------------
# Helix's side


class HelixBuffer:
    """A document as Helix holds it, with the cursor (a char offset) and the LSP version."""

    def __init__(self, server: Server, path: Path, text: str, cursor: int, language_id: str):
        self.server = server
        self.uri = path.as_uri()
        self.text = text
        self.cursor = cursor
        self.version = 0
        self.language_id = language_id
        # Helix's savepoint for the last completion request: the text and cursor when it was sent.
        self.savepoint = (text, cursor)
        server.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": self.uri,
                    "languageId": language_id,
                    "version": self.version,
                    "text": text,
                }
            },
        )

    def replace(self, start: int, end: int, new: str):
        """One transaction: replace text[start:end] by new and tell the server (incremental)."""
        enc = self.server.encoding
        change = {
            "range": {
                "start": to_position(self.text, start, enc),
                "end": to_position(self.text, end, enc),
            },
            "text": new,
        }
        self.text = self.text[:start] + new + self.text[end:]
        self.version += 1
        self.server.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": self.uri, "version": self.version}, "contentChanges": [change]},
        )

    def type(self, chars: str, delay: float = 0.04):
        for ch in chars:
            self.replace(self.cursor, self.cursor, ch)
            self.cursor += 1
            time.sleep(delay)

    def auto_trigger_applies(self, trigger_len: int = 2) -> bool:
        before = self.text[: self.cursor]
        tail = before[-trigger_len:]
        return len(tail) == trigger_len and all(char_is_word(c) for c in tail)

    def word_before(self) -> str:
        i = self.cursor
        while i > 0 and char_is_word(self.text[i - 1]):
            i -= 1
        return self.text[i : self.cursor]

    def completion_async(self, trigger_kind: int):
        """Sends textDocument/completion and takes a savepoint (as Helix does); returns the pending
        request for `server.wait_response`."""
        params = {
            "textDocument": {"uri": self.uri},
            "position": to_position(self.text, self.cursor, self.server.encoding),
            "context": {"triggerKind": trigger_kind},
        }
        self.savepoint = (self.text, self.cursor)
        return self.server.request_async("textDocument/completion", params)

    def completion(self, trigger_kind: int) -> dict:
        return self.server.wait_response(*self.completion_async(trigger_kind))

    def restore(self):
        """doc.restore(view, savepoint, true): back to the text of the last request (what was typed
        since is removed, and the server is told), the cursor where it was."""
        text, cursor = self.savepoint
        if self.text != text:
            start = 0
            while start < min(len(text), len(self.text)) and text[start] == self.text[start]:
                start += 1
            end_old, end_new = len(text), len(self.text)
            while end_old > start and end_new > start and text[end_old - 1] == self.text[end_new - 1]:
                end_old -= 1
                end_new -= 1
            self.replace(start, end_new, text[start:end_old])
        self.cursor = cursor

    def accept(self, item: dict):
        """Tab (select the first item) + Enter (accept): Helix restores the document to the
        request's savepoint ("if more text was entered, remove it"), then applies the item as
        lsp_item_to_transaction does."""
        self.restore()
        if item.get("insertTextFormat") == 2 or item.get("kind") == 15:
            raise Failure("the item is a snippet: Helix would parse and re-indent it")
        edit = item.get("textEdit")
        if edit is None:
            new_text = item.get("insertText") or item["label"]
            start, end = self.cursor - len(self.word_before()), self.cursor
        else:
            rng = edit.get("range") or edit.get("insert")  # InsertReplaceEdit: insert mode
            start = to_offset(self.text, rng["start"], self.server.encoding)
            end = to_offset(self.text, rng["end"], self.server.encoding)
            new_text = edit["newText"]
            # Helix keeps the offsets relative to the cursor and applies them at the cursor.
            start_off, end_off = start - self.cursor, end - self.cursor
            start, end = self.cursor + start_off, self.cursor + end_off
            if start < 0 or end > len(self.text):
                raise Failure(f"textEdit range {rng} is outside the document")
        self.replace(start, end, new_text)
        self.cursor = start + len(new_text)


def fuzzy_matches(pattern: str, text: str) -> bool:
    it = iter(text.lower())
    return all(ch in it for ch in pattern.lower())


def reference_suggestion(args, tmp: Path, path: Path, text: str, cursor: int, language_id: str, config: dict) -> str:
    """What a fresh moat process suggests for `text` at `cursor` via textDocument/inlineCompletion."""
    server = Server(moat_cmd(args), tmp / "reference.moat.log", env={})
    try:
        server.initialize(REFERENCE_CAPABILITIES, config, tmp, "reference")
        server.wait_ready()
        uri = path.as_uri()
        server.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}},
        )
        result = server.request(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": to_position(text, cursor, server.encoding),
                "context": {"triggerKind": 1},
            },
        )
        items = (result or {}).get("items", result) or []
        return items[0]["insertText"] if items else ""
    finally:
        server.close()


def moat_cmd(args) -> list[str]:
    return [args.moat, "serve", "--model", args.model]


# ---------------------------------------------------------------------------------------------
# Cases


def run_case(args, tmp: Path, name: str, original: str, typed: str, *, manual: bool,
             expect_multiline: bool, language_id: str = "python", suffix: str = ".py",
             config: dict | None = None, type_one_more: bool = False) -> str:
    config = config if config is not None else {"maxTokens": 48, "maxLines": 4}
    path = tmp / f"{name}{suffix}"
    path.write_text(original, encoding="utf-8")
    server = Server(moat_cmd(args), tmp / f"{name}.moat.log")
    failed = True
    try:
        init = server.initialize(HELIX_CAPABILITIES, config, tmp, "helix")
        caps = init["capabilities"]
        if caps.get("completionProvider") is None:
            raise Failure("the server offers no completionProvider")
        if server.encoding not in ("utf-8", "utf-32", "utf-16"):
            raise Failure(f"unexpected position encoding {server.encoding}")
        server.wait_ready()
        buf = HelixBuffer(server, path, original, len(original), language_id)
        buf.type(typed)

        if manual:
            # Ctrl-x: a manual trigger, sent at once.
            trigger_kind = 1
        else:
            if not buf.auto_trigger_applies():
                raise Failure(
                    f"Helix would not ask automatically here (the 2 characters before the cursor "
                    f"are not word characters: {buf.text[:buf.cursor][-2:]!r})"
                )
            time.sleep(0.25)  # editor.completion-timeout
            trigger_kind = 1
        trigger_text, trigger_cursor = buf.text, buf.cursor
        result = buf.completion(trigger_kind)
        if not isinstance(result, dict) or "items" not in result:
            raise Failure(f"expected a CompletionList, got {result!r}")
        items = result["items"]
        if not items:
            raise Failure("the completion list is empty")
        item = items[0]
        edit = item.get("textEdit") or {}
        new_text = edit.get("newText", "")
        word = buf.word_before()

        # The menu: the label previews the suggestion; filtering by the word keeps the item.
        first_line = new_text.split("\n")[0].strip()
        if not item.get("label") or not first_line.startswith(item["label"].rstrip("…")[:20]):
            raise Failure(f"label {item.get('label')!r} does not preview {new_text!r}")
        filter_text = item.get("filterText") or item["label"]
        if not fuzzy_matches(word, filter_text):
            raise Failure(f"Helix's filter {word!r} would hide the item (filterText {filter_text!r})")
        if result.get("isIncomplete") is not True:
            raise Failure("isIncomplete should be true (Helix then asks again as the user types)")

        suggestion = new_text[len(word):] if new_text.startswith(word) else None
        if suggestion is None:
            raise Failure(f"newText {new_text!r} does not start with the word {word!r}")

        if type_one_more:
            # The user types the suggestion's next character while the menu is open: Helix sends
            # the change and asks again (TriggerForIncompleteCompletions) before accepting.
            if not suggestion or not char_is_word(suggestion[0]):
                raise Failure(f"suggestion {suggestion!r} does not start with a word character")
            buf.type(suggestion[0])
            again = buf.completion(3)
            if not again or not again.get("items"):
                raise Failure("no item after typing one more character")
            item = again["items"][0]
            word2 = buf.word_before()
            if item["textEdit"]["newText"] != word2 + suggestion[1:]:
                raise Failure(
                    f"after typing {suggestion[0]!r}: newText {item['textEdit']['newText']!r}, "
                    f"expected {word2 + suggestion[1:]!r}"
                )

        buf.accept(item)

        reference = reference_suggestion(args, tmp, path, trigger_text, trigger_cursor, language_id, config)
        if reference == "":
            raise Failure("the reference server suggested nothing")
        expected = trigger_text[:trigger_cursor] + reference + trigger_text[trigger_cursor:]
        if buf.text != expected:
            raise Failure(f"buffer after accept:\n  expected {expected!r}\n  actual   {buf.text!r}")
        if buf.cursor != trigger_cursor + len(reference):
            raise Failure(f"cursor {buf.cursor}, expected {trigger_cursor + len(reference)}")
        if expect_multiline and "\n" not in reference:
            raise Failure(f"expected a multi-line suggestion, got {reference!r}")
        if not expect_multiline and "\n" in reference:
            raise Failure(f"expected a single-line suggestion, got {reference!r}")

        # The server saw the accepted edit: its copy must be Helix's (ask once more at the end).
        tail = buf.completion(1)
        if not isinstance(tail, dict):
            raise Failure(f"completion after accept: {tail!r}")
        failed = False
        return reference
    finally:
        rc = server.close()
        if not failed and rc not in (0, None):
            raise Failure(f"moat exited with {rc} after shutdown/exit")


def run_typing_case(args, tmp: Path, name: str, original: str, typed_before: str, typed_after: str, *,
                    manual: bool, load_delay_ms: int = 0, config: dict | None = None) -> str:
    """The user asks (as Helix would), then types `typed_after` before the answer arrives: the model
    is still loading (`load_delay_ms`, the server's test-only MOAT_TEST_LOAD_DELAY_MS) or the server
    is slow (a long debounceMs in `config`). Helix does not ask again while a request is in flight
    (an AutoTrigger is ignored then), shows the late answer filtered by the word before the cursor
    and, on accept, restores the request's savepoint before applying the item. The saved file must
    be the text as typed + what a fresh server suggests for it."""
    config = config if config is not None else {"maxTokens": 48, "maxLines": 4}
    path = tmp / f"{name}.py"
    path.write_text(original, encoding="utf-8")
    env = {"MOAT_TEST_LOAD_DELAY_MS": str(load_delay_ms)} if load_delay_ms else {}
    server = Server(moat_cmd(args), tmp / f"{name}.moat.log", env=env)
    failed = True
    try:
        server.initialize(HELIX_CAPABILITIES, config, tmp, "helix")
        if not load_delay_ms:
            server.wait_ready()
        buf = HelixBuffer(server, path, original, len(original), "python")
        buf.type(typed_before)
        if not manual:
            if not buf.auto_trigger_applies():
                raise Failure(f"Helix would not ask automatically after {typed_before!r}")
            time.sleep(0.25)  # editor.completion-timeout
        pending = buf.completion_async(1)
        loading = not any(st.get("state") == "ready" for st in server.status)
        buf.type(typed_after)
        result = server.wait_response(*pending, timeout=WAIT + load_delay_ms / 1000)
        if load_delay_ms and not loading:
            raise Failure("the model was ready before the request: the case tests nothing")
        if load_delay_ms and not any(st.get("state") == "ready" for st in server.status):
            # The answer may come just before the notification; it must come soon after.
            server.wait_ready()
        items = (result or {}).get("items") or []
        if not items:
            raise Failure(f"no item for the text as typed: {result!r}")
        item = items[0]
        word = buf.word_before()
        filter_text = item.get("filterText") or item["label"]
        if not filter_text.startswith(buf.text[buf.cursor - len(word):buf.cursor]):
            raise Failure(f"filterText {filter_text!r} does not start with the typed word {word!r}")
        if not fuzzy_matches(word, filter_text):
            raise Failure(f"Helix's filter {word!r} would hide the item (filterText {filter_text!r})")
        typed_text, typed_cursor = buf.text, buf.cursor
        buf.accept(item)
        path.write_text(buf.text, encoding="utf-8")  # :w
        reference = reference_suggestion(args, tmp, path, typed_text, typed_cursor, "python", config)
        if reference == "":
            raise Failure("the reference server suggested nothing")
        expected = typed_text[:typed_cursor] + reference + typed_text[typed_cursor:]
        saved = path.read_text(encoding="utf-8")
        if saved != expected:
            raise Failure(f"file after accept:\n  expected {expected!r}\n  actual   {saved!r}")
        if buf.cursor != typed_cursor + len(reference):
            raise Failure(f"cursor {buf.cursor}, expected {typed_cursor + len(reference)}")
        failed = False
        return reference
    finally:
        rc = server.close()
        if not failed and rc not in (0, None):
            raise Failure(f"moat exited with {rc} after shutdown/exit")


def run_no_request_on_insert_case(args, tmp: Path, name: str) -> str:
    """Entering insert mode after indentation (`o`) or typing a space must not make Helix ask: it
    asks at once when the text before the cursor ends with a trigger character (" " was one, and
    its answer arrived after the user had typed on, stale)."""
    server = Server(moat_cmd(args), tmp / f"{name}.moat.log")
    try:
        init = server.initialize(HELIX_CAPABILITIES, {}, tmp, "helix")
        triggers = init["capabilities"]["completionProvider"].get("triggerCharacters") or []
        for before in ["if x:\n    y = 1\n    ", "if x:\n    y = "]:
            fired = [t for t in triggers if before.endswith(t)]
            if fired:
                raise Failure(f"Helix would ask at once after {before!r} (trigger characters {fired})")
        return f"trigger characters {triggers}"
    finally:
        server.close()


CASES = [
    (
        "single-line",
        dict(
            original="import os\nimport sys\n\ndef main(argv):\n    path = os.path.",
            typed="jo",
            manual=False,
            expect_multiline=False,
        ),
    ),
    (
        "single-line, typing through while the menu is open",
        dict(
            original="import os\nimport sys\n\ndef main(argv):\n    path = os.path.",
            typed="jo",
            manual=False,
            expect_multiline=False,
            type_one_more=True,
        ),
    ),
    (
        "single-line, non-ASCII before the cursor (position encoding)",
        dict(
            original="import os\n\ndef main(argv):\n    naïve_päth = os.path.",
            typed="jo",
            manual=False,
            expect_multiline=False,
        ),
    ),
    (
        "multi-line (Ctrl-x on a fresh indented line)",
        dict(
            original="if x:\n",
            typed="    ",
            manual=True,
            expect_multiline=True,
        ),
    ),
    (
        "rust, single-line",
        dict(
            original="fn main() {\n    let v: Vec<u32> = Vec::new();\n    v.",
            typed="it",
            manual=False,
            expect_multiline=False,
            language_id="rust",
            suffix=".rs",
        ),
    ),
]


# Typing before the answer arrives: (name, keyword arguments of run_typing_case).
TYPING_CASES = [
    (
        "typing while the model loads (answered once ready, with what was typed)",
        dict(
            original="import os\nimport sys\n\ndef main(argv):\n    path = os.path.",
            typed_before="jo",
            typed_after="in",
            manual=False,
            load_delay_ms=2500,
        ),
    ),
    (
        "typing in the gap between request and answer (slow server)",
        dict(
            original="import os\nimport sys\n\ndef main(argv):\n    path = os.path.",
            typed_before="jo",
            typed_after="in",
            manual=False,
            config={"maxTokens": 48, "maxLines": 4, "debounceMs": 600},
        ),
    ),
    (
        "Ctrl-x on a fresh indented line, `els` typed before the answer (no stale item)",
        dict(
            original="def f(x):\n    if x:\n        return 1\n",
            typed_before="    ",
            typed_after="els",
            manual=True,
            config={"maxTokens": 48, "maxLines": 4, "debounceMs": 600},
        ),
    ),
]


def run_feedback_case(args, tmp: Path, name: str) -> str:
    """Feedback as Helix leaves it (docs/feedback.md). Helix 25.x does not run an item's command
    (helix-editor/helix#15585), so the server learns the outcome from the text: the accepted item,
    whole at its place, is seen by the next request; a suggestion typed past is dismissed. Nothing
    of the source text is written by default."""
    feedback = tmp / "feedback"
    original = "import os\n\ndef read_file(path):\n    with open(path) as f:\n        return f.re"
    path = tmp / f"{name}.py"
    path.write_text(original, encoding="utf-8")
    env = {"MOAT_FEEDBACK": "1", "MOAT_FEEDBACK_DIR": str(feedback)}
    server = Server(moat_cmd(args), tmp / f"{name}.moat.log", env=env)
    try:
        server.initialize(HELIX_CAPABILITIES, {"maxTokens": 48, "maxLines": 4}, tmp, "helix")
        server.wait_ready()
        buf = HelixBuffer(server, path, original, len(original), "python")
        items = buf.completion(1).get("items") or []
        if not items:
            raise Failure("no completion item")
        if (items[0].get("command") or {}).get("command") != "moat.suggestionAccepted":
            raise Failure(f"the item carries no accept command: {items[0]}")
        buf.accept(items[0])  # Enter: the edit is applied, the command is not run
        buf.completion(1)  # the next request sees the accepted text
        buf.type("\n# ")
        buf.completion(1)  # whatever was suggested after the accept was typed past
    finally:
        server.close()
    log = feedback / "feedback.jsonl"
    if not log.is_file():
        raise Failure(f"no feedback written to {log}")
    text = log.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    got = [(r["method"], r["outcome"], r["signal"], r["client"]) for r in records]
    if not got or got[0] != ("completion", "accepted", "next_request", "helix"):
        raise Failure(f"expected the accepted item first, recorded {got}")
    if any(o == "accepted" for _, o, _, _ in got[1:]):
        raise Failure(f"only the first item was accepted, recorded {got}")
    for line in original.splitlines():
        if len(line.strip()) > 8 and line.strip() in text:
            raise Failure(f"source text {line.strip()!r} in the feedback file")
    return ", ".join(f"{m} {o} ({s})" for m, o, s, _ in got)


def check_languages_toml() -> str:
    """editors/helix/languages.toml: valid TOML, moat defined and added to every language."""
    import tomllib

    path = Path(__file__).resolve().parents[1] / "languages.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    server = data.get("language-server", {}).get("moat")
    if not server or server.get("command") != "moat" or server.get("args") != ["serve"]:
        raise Failure(f"[language-server.moat] should run `moat serve`, got {server!r}")
    langs = {lang["name"]: lang for lang in data.get("language", [])}
    wanted = ["python", "rust", "javascript", "typescript", "go", "java", "c", "cpp"]
    for name in wanted:
        servers = langs.get(name, {}).get("language-servers")
        if not servers or "moat" not in servers:
            raise Failure(f"{name}: moat missing from language-servers ({servers!r})")
        if len(servers) < 2:
            raise Failure(f"{name}: the built-in servers were not kept ({servers!r})")
    return ", ".join(sorted(langs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moat", default=os.environ.get("MOAT_BIN", str(REPO / "target/debug/moat")))
    ap.add_argument("--model", default=os.environ.get("MOAT_MODEL", str(REPO / "model-assets/tiny-llama")))
    ap.add_argument("-k", dest="only", help="run the cases whose name contains this")
    ap.add_argument(
        "--reference",
        metavar="FILE",
        help="print (as JSON) what a fresh moat suggests at the end of FILE, and exit (used by other editors' tests)",
    )
    ap.add_argument("--language-id", default="python", help="with --reference")
    args = ap.parse_args()
    if args.reference:
        path = Path(args.reference).resolve()
        text = path.read_text(encoding="utf-8")
        with tempfile.TemporaryDirectory(prefix="moat-ref-") as d:
            print(json.dumps(reference_suggestion(args, Path(d), path, text, len(text), args.language_id, {})))
        return 0
    if not os.access(args.moat, os.X_OK):
        print(f"not ok - moat binary not found: {args.moat}")
        print("0 passed, 1 failed")
        return 1

    passed = failed = 0
    if not args.only or args.only in "languages.toml":
        try:
            print(f"ok - helix: languages.toml ({check_languages_toml()})")
            passed += 1
        except Exception as e:  # noqa: BLE001
            print(f"not ok - helix: languages.toml: {e}")
            failed += 1
    with tempfile.TemporaryDirectory(prefix="moat-helix-") as d:
        root = Path(d)
        for name, case in CASES:
            if args.only and args.only not in name:
                continue
            tmp = root / f"case{passed + failed}"
            tmp.mkdir()
            start = time.monotonic()
            try:
                suggestion = run_case(args, tmp, name.split(" ")[0].strip(","), **case)
                passed += 1
                print(f"ok - helix: {name} ({time.monotonic() - start:.1f} s): {suggestion!r}")
            except Exception as e:  # noqa: BLE001 - report every failure the same way
                failed += 1
                print(f"not ok - helix: {name} ({time.monotonic() - start:.1f} s): {e}")
                for log in sorted(tmp.glob("*.log")):
                    lines = log.read_text(errors="replace").splitlines()[-10:]
                    if lines:
                        print(f"  {log.name}:\n    " + "\n    ".join(lines))
            sys.stdout.flush()
        extra = [(name, run_typing_case, case) for name, case in TYPING_CASES]
        extra.append(("no request on entering insert mode or after a space", run_no_request_on_insert_case, {}))
        extra.append(("feedback: accept seen from the text, no source text", run_feedback_case, {}))
        # Code actions (issue 14) live in their own file.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import code_actions  # noqa: E402

        extra.append(("code action: space a, resolve, apply", code_actions.run_code_action_case, {"h": sys.modules[__name__]}))
        for name, run, case in extra:
            if args.only and args.only not in name:
                continue
            tmp = root / f"case{passed + failed}"
            tmp.mkdir()
            start = time.monotonic()
            try:
                note = run(args, tmp, f"typing{passed + failed}", **case)
                passed += 1
                print(f"ok - helix: {name} ({time.monotonic() - start:.1f} s): {note!r}")
            except Exception as e:  # noqa: BLE001 - report every failure the same way
                failed += 1
                print(f"not ok - helix: {name} ({time.monotonic() - start:.1f} s): {e}")
                for log in sorted(tmp.glob("*.log")):
                    lines = log.read_text(errors="replace").splitlines()[-10:]
                    if lines:
                        print(f"  {log.name}:\n    " + "\n    ".join(lines))
            sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
