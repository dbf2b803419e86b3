#!/usr/bin/env python3
"""Markdown tables from `moat eval --json` reports (for README.md and tests/eval/README.md).

    python3 bench/scripts/eval-table.py REPORT.json... [--by-language]

One row per report (overall), or per report and language with --by-language; a report's set
name is its task file's stem. Contexts of the same set side by side make the ablation readable:
the "vs file" column is the exact-match difference against the same set's `file` report.
"""

import json
import sys
from pathlib import Path


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    by_language = "--by-language" in sys.argv
    reports = [json.loads(Path(a).read_text()) for a in args]
    file_em = {}
    for r in reports:
        if r["context"] == "file":
            file_em[(Path(r["tasks_file"]).stem, "overall")] = r["overall"]["exact_match_line"]
            for lang, s in r["per_language"].items():
                file_em[(Path(r["tasks_file"]).stem, lang)] = s["exact_match_line"]
    print("| set | context | language | n | EM line | vs file | EM span | edit sim | empty "
          "| p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        name = Path(r["tasks_file"]).stem
        rows = [("overall", r["overall"])]
        if by_language:
            rows = sorted(r["per_language"].items()) + rows
        for lang, s in rows:
            base = file_em.get((name, lang))
            delta = "" if base is None or r["context"] == "file" else \
                f"{100 * (s['exact_match_line'] - base):+.1f}"
            print(f"| {name} | {r['context']} | {lang} | {s['tasks']} | "
                  f"{pct(s['exact_match_line'])} | {delta} | {pct(s['exact_match_span'])} | "
                  f"{s['edit_similarity']:.3f} | {pct(s['empty_rate'])} | "
                  f"{s['latency_ms_p50']:.0f} | {s['latency_ms_p95']:.0f} |")


if __name__ == "__main__":
    main()
