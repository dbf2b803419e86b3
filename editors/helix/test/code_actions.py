"""Code actions as Helix uses them (issue 14), replayed against the real binary: `space a` sends
textDocument/codeAction for the primary selection (the character under the cursor) with the
diagnostics that touch it, shows the titles in a menu, and on Enter resolves the chosen action
(codeAction/resolve: moat's actions come without an edit) and applies its WorkspaceEdit as one
transaction, which the server hears as a didChange (helix-term/src/commands/lsp.rs
`code_action`, helix-lsp `Client::resolve_code_action`, Helix 25.07).

Loaded by replay.py, which runs `run_code_action_case` with its helpers.
"""

from __future__ import annotations

from pathlib import Path


def run_code_action_case(args, tmp: Path, name: str, *, h) -> str:
    original = "def area(width, height):\n    return width * height\n"
    path = tmp / f"{name}.py"
    path.write_text(original, encoding="utf-8")
    server = h.Server(h.moat_cmd(args), tmp / f"{name}.moat.log")
    try:
        init = server.initialize(h.HELIX_CAPABILITIES, {}, tmp, "helix")
        provider = init["capabilities"].get("codeActionProvider") or {}
        if not provider.get("resolveProvider"):
            raise h.Failure(f"no resolvable code actions: {provider}")
        server.wait_ready()
        cursor = original.index("width *")
        buf = h.HelixBuffer(server, path, original, cursor, "python")
        enc = server.encoding
        # `space a`: the selection is the character under the cursor.
        actions = server.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": buf.uri},
                "range": {
                    "start": h.to_position(buf.text, cursor, enc),
                    "end": h.to_position(buf.text, cursor + 1, enc),
                },
                "context": {"diagnostics": [], "triggerKind": 1},
            },
        ) or []
        titles = [a["title"] for a in actions]
        chosen = next((a for a in actions if "write the doc comment of `area`" in a["title"]), None)
        if chosen is None:
            raise h.Failure(f"no doc comment action in the menu: {titles}")
        if "edit" in chosen:
            raise h.Failure("the edit should be computed only when chosen")
        resolved = server.request("codeAction/resolve", chosen, timeout=60)
        edit = resolved.get("edit")
        if not edit:
            raise h.Failure(f"the resolved action has no edit: {resolved}")
        edits = (edit.get("changes") or {}).get(buf.uri) or []
        if not edits:
            raise h.Failure(f"no edit of {buf.uri}: {edit}")
        # One transaction, applied from the last edit to the first.
        for e in sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]), reverse=True):
            start = h.to_offset(buf.text, e["range"]["start"], enc)
            end = h.to_offset(buf.text, e["range"]["end"], enc)
            buf.replace(start, end, e["newText"])
        lines = buf.text.splitlines()
        if lines[0] != "def area(width, height):" or not lines[1].startswith('    """'):
            raise h.Failure(f"no docstring under the header: {buf.text!r}")
        if lines[-1] != "    return width * height":
            raise h.Failure(f"the body changed: {buf.text!r}")
        # The server took the change: the same action is offered no more (there is a docstring).
        again = server.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": buf.uri},
                "range": {
                    "start": h.to_position(buf.text, buf.text.index("width *"), enc),
                    "end": h.to_position(buf.text, buf.text.index("width *") + 1, enc),
                },
                "context": {"diagnostics": [], "triggerKind": 1},
            },
        ) or []
        if any("doc comment" in a["title"] for a in again):
            raise h.Failure(f"the doc comment is offered again after it was written: {again}")
        return f"menu {titles}; applied {lines[1].strip()!r}"
    finally:
        server.close()
