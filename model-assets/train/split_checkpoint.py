#!/usr/bin/env python3
"""Cut large files into parts of at most N MiB for transport, and join them again.

    python split_checkpoint.py split DIR_OR_FILE [--max-mib 16] [--keep]
    python split_checkpoint.py join DIR [--keep]

`split` replaces every file larger than --max-mib under DIR (e.g. a checkpoint folder with
model.safetensors, or state.pt, or token shards) by FILE.part000, FILE.part001, ... and records
them with their sha256 in DIR/SPLIT.json. `join` rebuilds each file, checks its sha256, and
removes the parts (unless --keep). Both are idempotent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split(target: Path, max_mib: float, keep: bool) -> None:
    root = target if target.is_dir() else target.parent
    files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
    limit = int(max_mib * (1 << 20))
    index_path = root / "SPLIT.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"files": {}}
    for p in files:
        if p.name == "SPLIT.json" or ".part" in p.name or p.stat().st_size <= limit:
            continue
        digest = sha256_file(p)
        parts = []
        with open(p, "rb") as f:
            i = 0
            while True:
                data = f.read(limit)
                if not data:
                    break
                part = p.with_name(f"{p.name}.part{i:03d}")
                part.write_bytes(data)
                parts.append(part.name)
                i += 1
        rel = p.relative_to(root).as_posix()
        index["files"][rel] = {"sha256": digest, "bytes": p.stat().st_size, "parts": parts}
        if not keep:
            p.unlink()
        print(f"split {rel}: {len(parts)} parts")
    index_path.write_text(json.dumps(index, indent=2) + "\n")


def join(root: Path, keep: bool) -> None:
    index_path = root / "SPLIT.json"
    if not index_path.exists():
        print(f"join: no SPLIT.json in {root}; nothing to do")
        return
    index = json.loads(index_path.read_text())
    for rel, info in index["files"].items():
        out = root / rel
        if out.exists() and out.stat().st_size == info["bytes"] and sha256_file(out) == info["sha256"]:
            pass
        else:
            tmp = out.with_name(out.name + ".joining")
            with open(tmp, "wb") as f:
                for part in info["parts"]:
                    f.write((out.parent / part).read_bytes())
            if sha256_file(tmp) != info["sha256"]:
                tmp.unlink()
                sys.exit(f"join: {rel}: sha256 mismatch (missing or corrupt part?)")
            os.replace(tmp, out)
            print(f"joined {rel} ({len(info['parts'])} parts)")
        if not keep:
            for part in info["parts"]:
                (out.parent / part).unlink(missing_ok=True)
    if not keep:
        index_path.unlink()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("target", type=Path)
    s.add_argument("--max-mib", type=float, default=16)
    s.add_argument("--keep", action="store_true", help="keep the original files")
    j = sub.add_parser("join")
    j.add_argument("root", type=Path)
    j.add_argument("--keep", action="store_true", help="keep the parts")
    args = ap.parse_args(argv)
    if args.cmd == "split":
        split(args.target, args.max_mib, args.keep)
    else:
        join(args.root, args.keep)


if __name__ == "__main__":
    main()
