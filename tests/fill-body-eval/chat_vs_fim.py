#!/usr/bin/env python3
"""FIM or chat for "fill the body"? The same held-out tasks (tasks.jsonl, the first N per
language), the default model run directly with ONNX Runtime (model-assets/train/ort_runner.py,
greedy, as the server decodes), two prompts:

  fim   the server's: the file before the body (header + line break) and after it, in the
        manifest's FIM template; generation stops at the body's end (dedent / closing brace);
  chat  Qwen2.5's ChatML (system + user turn: "write the body of NAME", the function with the stub
        in a code block: its header line, the stub, its closing line), the reply's first code
        block; a reply holding the whole function is cut to its body.

Run with the training venv:  nice -n 10 model-assets/train/.venv/bin/python \\
    tests/fill-body-eval/chat_vs_fim.py [--per-language 8] [--model ~/.local/share/moat/models/default]
Prints exact match, edit similarity and seconds per task for each prompt and language.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "model-assets" / "train"))
sys.path.insert(0, str(HERE))

from fill_body_eval import STUB, levenshtein, make_stubbed, normalize  # noqa: E402
from ort_runner import OrtModel  # noqa: E402

FENCE = {"python": "python", "rust": "rust", "typescript": "typescript"}
PROMPT_BUDGET = 1500  # tokens of file text in either prompt
MAX_NEW = 320


def window(text: str, start: int, end: int, budget_chars: int) -> tuple[str, str]:
    """The text before `start` and after `end`, cut at line boundaries to about budget_chars."""
    before, after = text[:start], text[end:]
    keep_before = budget_chars * 3 // 4
    if len(before) > keep_before:
        cut = before.find("\n", len(before) - keep_before)
        before = before[cut + 1 :] if cut >= 0 else before[-keep_before:]
    keep_after = budget_chars // 4
    if len(after) > keep_after:
        cut = after.rfind("\n", 0, keep_after)
        after = after[: cut + 1] if cut >= 0 else after[:keep_after]
    return before, after


def body_end(language: str, text: str, indent: int) -> int | None:
    """Where the generated body ends: a dedent (Python) or the closer that unbalances (braces)."""
    if language == "python":
        pos = 0
        for line in text.split("\n"):
            body = line.lstrip(" \t")
            if body and len(line) - len(body) < indent:
                return pos
            pos += len(line) + 1
        return None
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return text.rfind("\n", 0, i) + 1
    return None


def generate(model: OrtModel, prompt: list[int], stop) -> tuple[str, float]:
    import numpy as np

    t0 = time.perf_counter()
    logits, past = model.step(prompt, model.empty_past(), 0)
    n, out, text = len(prompt), [], ""
    for _ in range(MAX_NEW):
        nxt = int(np.argmax(logits))
        if nxt in model.stop_ids:
            break
        out.append(nxt)
        text = model.tok.decode(out)
        if stop(text) is not None:
            break
        logits, past = model.step([nxt], past, n)
        n += 1
    return text, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-language", type=int, default=8)
    ap.add_argument("--model", default=str(Path.home() / ".local/share/moat/models/default"))
    ap.add_argument("--tasks", default=str(HERE / "tasks.jsonl"))
    ap.add_argument("--verbose", action="store_true", help="print each expected body, FIM body and chat reply")
    args = ap.parse_args()
    model = OrtModel(Path(args.model), threads=2)
    im_start, im_end = model.tok.token_to_id("<|im_start|>"), model.tok.token_to_id("<|im_end|>")
    if im_start is None or im_end is None:
        print("this model has no ChatML tokens", file=sys.stderr)
        return 1
    model.stop_ids.add(im_end)
    tasks = [json.loads(l) for l in open(args.tasks, encoding="utf-8") if l.strip()]
    rows = {}
    for language in ("python", "rust", "typescript"):
        chosen = [t for t in tasks if t["language"] == language][: args.per_language]
        for t in chosen:
            original = Path(t["path"]).read_text(encoding="utf-8")
            stubbed, stub_at, line_start = make_stubbed(t, original)
            stub_end = stub_at + len(STUB[language])
            indent = stub_at - line_start
            expected = normalize(t["expected"])
            budget_chars = PROMPT_BUDGET * 3  # ~3 characters per token of code
            # FIM: the server's prompt (header + line break | the rest after the body).
            before, after = window(stubbed, line_start, stub_end, budget_chars)
            prompt = model.fim_prompt(model.encode(before), model.encode(after))
            fim, fim_s = generate(model, prompt, lambda g: body_end(language, g, indent))
            cut = body_end(language, fim, indent)
            fim = fim[:cut] if cut is not None else fim
            # Chat: the stubbed file around the function in a code block.
            # Only the function (its header line, the stub, the closing line): with the whole file
            # in the block, the 0.5B model copies the file back instead of answering.
            header = stubbed.rfind("\n", 0, max(0, line_start - 1)) + 1
            stub_line_end = stubbed.find("\n", stub_end)
            stub_line_end = len(stubbed) if stub_line_end < 0 else stub_line_end
            if language != "python":
                nxt = stubbed.find("\n", stub_line_end + 1)
                stub_line_end = len(stubbed) if nxt < 0 else nxt
            code = stubbed[header:stub_line_end]
            user = (f"Write the body of the {language} function `{t['name']}` (it is `{STUB[language]}` now) in this file. "
                    f"Reply with only the function's body in one code block.\n\n```{FENCE[language]}\n{code}\n```")
            ids = ([im_start] + model.encode("system\nYou are a helpful coding assistant.") + [im_end] + model.encode("\n")
                   + [im_start] + model.encode("user\n" + user) + [im_end] + model.encode("\n")
                   + [im_start] + model.encode("assistant\n"))
            reply, chat_s = generate(model, ids, lambda g: (m.end() if (m := re.search(r"```[a-z]*\n.*?```", g, re.S)) else None))
            m = re.search(r"```[a-z]*\n(.*?)(```|$)", reply, re.S)
            chat = m.group(1) if m else reply
            # A reply that repeats the whole function: keep its body.
            lines = chat.split("\n")
            if lines and t["name"] in lines[0] and (lines[0].rstrip().endswith((":", "{"))):
                body = "\n".join(lines[1:])
                if language != "python":
                    body = body[: body.rstrip().rfind("}")] if body.rstrip().endswith("}") else body
                chat = body
            for kind, got, secs in (("fim", fim, fim_s), ("chat", chat, chat_s)):
                got = normalize(got)
                r = rows.setdefault((language, kind), {"n": 0, "exact": 0, "sim": 0.0, "secs": 0.0})
                r["n"] += 1
                r["exact"] += got == expected
                r["sim"] += 1 - levenshtein(expected, got) / max(len(expected), len(got), 1)
                r["secs"] += secs
            print(f"{t['id']}: fim {normalize(fim) == expected} chat {normalize(chat) == expected}", file=sys.stderr)
            if args.verbose:
                print(f"--- expected\n{expected}\n--- fim\n{normalize(fim)}\n--- chat reply\n{reply}", file=sys.stderr)
    print("| language | prompt | tasks | exact match | edit sim | s/task |")
    print("|---|---|---|---|---|---|")
    for (language, kind), r in rows.items():
        print(f"| {language} | {kind} | {r['n']} | {r['exact'] / r['n']:.1%} | {r['sim'] / r['n']:.3f} | {r['secs'] / r['n']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
