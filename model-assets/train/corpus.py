#!/usr/bin/env python3
"""Step 1: collect source files from what is installed on this machine (and from your repos).

    python corpus.py [--out work/corpus] [--sources stdlib,site-packages,cargo,npm,include,go,jdk]
                     [--repo PATH[=NAME] ...] [--repo-license SPDX] [--npm-pack NAME ...]
                     [--max-mb-per-source N] [--max-files-per-source N] [--force]

Sources (each one is resumable: <out>/<source>.done marks it finished):
  stdlib         the running interpreter's standard library (package = top-level module)
  site-packages  installed Python distributions (importlib.metadata; licence from METADATA)
  cargo          ~/.cargo/registry/src/*/<crate>-<version> (licence from Cargo.toml)
  npm            /usr/lib/node_modules/**, the npm cache (~/.npm/_cacache tarballs), and
                 packages fetched with `npm pack` (--npm-pack NAME ...)
  include        /usr/include C/C++ headers, mapped to Debian packages (dpkg) and licences
                 (/usr/share/doc/PKG/copyright)
  go             Go sources: GOROOT/src (Debian golang-*-src) and the module cache
  jdk            JDK src.zip files under /usr/lib/jvm (package = module)
  repo-NAME      a directory given with --repo (your own code; `git ls-files` when a git repo)

Output: <out>/<source>-NNNNN.jsonl.gz records {id, source, package, version, license, path,
language, content} and <out>/manifest.jsonl (provenance, one line per file, no content).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import tomllib
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, WORK, ShardWriter, language_of, log, sha256_text, stable_hash01, write_json  # noqa: E402

MAX_FILE_BYTES = 1 << 20
SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", "target", ".venv", "venv",
             ".tox", ".mypy_cache", ".pytest_cache", "build", "dist", ".idea", ".vscode"}

# ----------------------------------------------------------------------------------------
# licence detection
# ----------------------------------------------------------------------------------------

CLASSIFIER_LICENSES = [
    ("MIT License", "MIT"), ("Apache Software License", "Apache-2.0"),
    ("BSD License", "BSD-3-Clause"), ("Python Software Foundation License", "PSF-2.0"),
    ("Mozilla Public License 2.0", "MPL-2.0"), ("ISC License", "ISC"),
    ("GNU Lesser General Public License", "LGPL"), ("GNU Library or Lesser", "LGPL"),
    ("GNU Affero General Public License", "AGPL"), ("GNU General Public License", "GPL"),
    ("The Unlicense", "Unlicense"), ("zlib/libpng License", "Zlib"),
    ("Boost Software License", "BSL-1.0"), ("Public Domain", "Public-Domain"),
    ("Historical Permission Notice", "HPND"), ("Eclipse Public License", "EPL-2.0"),
]


def license_from_text(text: str) -> str:
    t = " ".join(text[:6000].split())
    tl = t.lower()
    if "apache license" in tl and "2.0" in tl:
        return "Apache-2.0"
    if "mit license" in tl or "permission is hereby granted, free of charge" in tl:
        return "MIT"
    if "gnu lesser general public license" in tl or "gnu library general public" in tl:
        return "LGPL"
    if "gnu affero general public license" in tl:
        return "AGPL"
    if "gnu general public license" in tl:
        if "classpath exception" in tl or "linking exception" in tl:
            return "GPL-2.0-with-classpath-exception"
        return "GPL"
    if "mozilla public license" in tl:
        return "MPL-2.0"
    if "redistribution and use in source and binary forms" in tl:
        return "BSD-3-Clause" if "neither the name" in tl or "endorse or promote" in tl else "BSD-2-Clause"
    if "permission to use, copy, modify, and/or distribute" in tl or "isc license" in tl:
        return "ISC"
    if "this is free and unencumbered software" in tl:
        return "Unlicense"
    if "boost software license" in tl:
        return "BSL-1.0"
    if "provided 'as-is', without any express or implied" in tl:
        return "Zlib"
    if "python software foundation" in tl:
        return "PSF-2.0"
    if "public domain" in tl:
        return "Public-Domain"
    return "unknown"


def license_from_dir(d: Path) -> str:
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return "unknown"
    found = []
    for n in names:
        if re.match(r"(?i)^(licen[cs]e|copying|unlicense)", n):
            try:
                found.append(license_from_text((d / n).read_text(errors="replace")))
            except OSError:
                pass
    found = [f for f in found if f != "unknown"]
    return " OR ".join(sorted(set(found))) if found else "unknown"


def read_source(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return decode(data)


def decode(data: bytes) -> str | None:
    if len(data) > MAX_FILE_BYTES or b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ----------------------------------------------------------------------------------------
# sources: each yields (package, version, license, relpath, content) in a deterministic order
# ----------------------------------------------------------------------------------------

def walk_files(root: Path, skip_dirs=SKIP_DIRS):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and not d.startswith("."))
        for f in sorted(filenames):
            if language_of(f):
                yield Path(dirpath) / f


def src_stdlib(args):
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ver = platform.python_version()
    skip = SKIP_DIRS | {"site-packages", "dist-packages", "idlelib", "lib2to3"}
    for p in walk_files(stdlib, skip):
        rel = p.relative_to(stdlib).as_posix()
        top = rel.split("/")[0].removesuffix(".py")
        yield (f"cpython/{top}", ver, "PSF-2.0", rel, p)


def _dist_license(dist) -> str:
    md = dist.metadata
    expr = md.get("License-Expression")
    if expr:
        return expr.strip()
    for c in md.get_all("Classifier") or []:
        if c.startswith("License ::"):
            for key, spdx in CLASSIFIER_LICENSES:
                if key in c:
                    return spdx
    lic = (md.get("License") or "").strip()
    if lic and len(lic) < 60 and "\n" not in lic:
        return lic
    if lic:
        got = license_from_text(lic)
        if got != "unknown":
            return got
    for f in dist.files or []:
        n = f.name.lower()
        if n.startswith(("license", "licence", "copying")):
            try:
                got = license_from_text(Path(dist.locate_file(f)).read_text(errors="replace"))
            except OSError:
                continue
            if got != "unknown":
                return got
    return "unknown"


def src_site_packages(args):
    import importlib.metadata as im
    seen = set()
    dists = []
    for dist in im.distributions():
        name = (dist.metadata.get("Name") or "").strip()
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        dists.append(dist)
    dists.sort(key=lambda d: d.metadata["Name"].lower())
    for dist in dists:
        name = dist.metadata["Name"]
        lic = _dist_license(dist)
        files = sorted(str(f) for f in (dist.files or []) if language_of(str(f)))
        for f in files:
            if "__pycache__" in f or f.startswith(".."):
                continue
            p = Path(dist.locate_file(f))
            yield (f"pypi/{name}", dist.version, lic, f, p)


def _cargo_meta(crate_dir: Path):
    try:
        meta = tomllib.loads((crate_dir / "Cargo.toml").read_text(errors="replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    pkg = meta.get("package", {})
    name, ver = pkg.get("name"), pkg.get("version")
    if not isinstance(name, str) or not isinstance(ver, str):
        return None
    lic = pkg.get("license")
    if not isinstance(lic, str):
        lic = license_from_dir(crate_dir)
    return name, ver, lic.replace("/", " OR ")


def src_cargo(args):
    root = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "registry" / "src"
    crates = {}
    for index_dir in sorted(root.glob("*")):
        for crate_dir in sorted(index_dir.glob("*")):
            if crate_dir.is_dir() and crate_dir.name not in crates:
                crates[crate_dir.name] = crate_dir
    for key in sorted(crates):
        crate_dir = crates[key]
        meta = _cargo_meta(crate_dir)
        if not meta:
            continue
        name, ver, lic = meta
        for p in walk_files(crate_dir):
            yield (f"crates/{name}", ver, lic, p.relative_to(crate_dir).as_posix(), p)


def _npm_license(pj: dict) -> str:
    lic = pj.get("license")
    if isinstance(lic, dict):
        lic = lic.get("type")
    if isinstance(lic, str) and lic.strip():
        return lic.strip().strip("()")
    lics = pj.get("licenses")
    if isinstance(lics, list) and lics and isinstance(lics[0], dict):
        return " OR ".join(str(x.get("type")) for x in lics)
    return "unknown"


def _npm_tarball(data: bytes, seen: set):
    try:
        # decompress once: seeking in a gzip stream re-decompresses from the start
        tf = tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:")
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return
    members = [m for m in tf.getmembers() if m.isfile()]
    pj = None
    for m in members:
        if m.name.count("/") == 1 and m.name.endswith("/package.json"):
            try:
                pj = json.loads(tf.extractfile(m).read().decode("utf-8", "replace"))
            except (ValueError, OSError):
                pj = None
            break
    if not isinstance(pj, dict) or not isinstance(pj.get("name"), str):
        return
    key = (pj["name"], str(pj.get("version")))
    if key in seen:
        return
    seen.add(key)
    lic = _npm_license(pj)
    for m in sorted(members, key=lambda m: m.name):
        rel = m.name.split("/", 1)[1] if "/" in m.name else m.name
        if not language_of(rel) or m.size > MAX_FILE_BYTES or "/node_modules/" in f"/{rel}":
            continue
        try:
            data = tf.extractfile(m).read()
        except (OSError, tarfile.TarError):
            continue
        yield (f"npm/{pj['name']}", key[1], lic, rel, data)


def src_npm(args):
    seen: set = set()
    # 1. installed packages (global node_modules): every folder with a package.json
    for root in [Path("/usr/lib/node_modules"), Path("/usr/local/lib/node_modules")]:
        if not root.is_dir():
            continue
        pkg_dirs = sorted(p.parent for p in root.rglob("package.json")
                          if p.parent.parent.name == "node_modules"
                          or p.parent.parent.parent.name == "node_modules")
        for d in pkg_dirs:
            try:
                pj = json.loads((d / "package.json").read_text(errors="replace"))
            except (OSError, ValueError):
                continue
            if not isinstance(pj, dict) or not isinstance(pj.get("name"), str):
                continue
            key = (pj["name"], str(pj.get("version")))
            if key in seen:
                continue
            seen.add(key)
            lic = _npm_license(pj)
            for p in walk_files(d):
                yield (f"npm/{pj['name']}", key[1], lic, p.relative_to(d).as_posix(), p)
    # 2. the npm cache: tarballs in content-v2, found through index-v5
    cache = Path(os.environ.get("npm_config_cache", Path.home() / ".npm")) / "_cacache"
    tarballs = []
    for idx in sorted((cache / "index-v5").rglob("*")) if cache.is_dir() else []:
        if not idx.is_file():
            continue
        try:
            lines = idx.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                entry = json.loads(line.split("\t", 1)[1])
            except (IndexError, ValueError):
                continue
            if not str(entry.get("key", "")).endswith(".tgz") or not entry.get("integrity"):
                continue
            algo, b64 = entry["integrity"].split()[0].split("-", 1)
            h = base64.b64decode(b64).hex()
            p = cache / "content-v2" / algo / h[:2] / h[2:4] / h[4:]
            if p.is_file():
                tarballs.append(p)
    # 3. npm pack NAME ... into a temp dir
    packed, tmp = [], None
    if args.npm_pack:
        tmp = Path(tempfile.mkdtemp(prefix="moat-npm-"))
        for name in args.npm_pack:
            r = subprocess.run(["npm", "pack", "--silent", name], cwd=tmp, capture_output=True,
                               text=True, timeout=300)
            if r.returncode != 0:
                log(f"npm pack {name} failed: {r.stderr.strip()[:200]}")
        packed = sorted(tmp.glob("*.tgz"))
    for p in sorted(set(tarballs)) + packed:
        try:
            data = p.read_bytes()
        except OSError:
            continue
        yield from _npm_tarball(data, seen)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def _dpkg_owners() -> dict[str, str]:
    owners = {}
    info = Path("/var/lib/dpkg/info")
    for lst in sorted(info.glob("*.list")):
        pkg = lst.stem.split(":")[0]
        try:
            for line in lst.read_text(errors="replace").splitlines():
                if line.startswith("/usr/include/"):
                    owners[line] = pkg
        except OSError:
            pass
    return owners


def _dpkg_versions() -> dict[str, str]:
    vers, pkg = {}, None
    try:
        for line in Path("/var/lib/dpkg/status").read_text(errors="replace").splitlines():
            if line.startswith("Package: "):
                pkg = line[9:].strip()
            elif line.startswith("Version: ") and pkg:
                vers[pkg] = line[9:].strip()
    except OSError:
        pass
    return vers


def _debian_license(pkg: str, cache: dict) -> str:
    if pkg in cache:
        return cache[pkg]
    lic = "unknown"
    p = Path("/usr/share/doc") / pkg / "copyright"
    try:
        text = p.read_text(errors="replace")
    except OSError:
        text = ""
    m = re.search(r"^Files:\s*\*[ \t]*\n(?:[^\n]+\n)*?License:[ \t]*([^\n]+)", text, re.M)
    if m:
        lic = m.group(1).strip()
    elif text:
        lic = license_from_text(text)
    cache[pkg] = lic
    return lic


def src_include(args):
    owners, vers, lic_cache = _dpkg_owners(), _dpkg_versions(), {}
    root = Path("/usr/include")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            if not language_of(f) and "c++" not in dirpath:
                continue
            lang_path = f if language_of(f) else f + ".hpp"   # extension-less C++ headers
            pkg = owners.get(str(p), "unknown")
            rel = p.relative_to(root).as_posix()
            yield (f"debian/{pkg}", vers.get(pkg, "?"), _debian_license(pkg, lic_cache),
                   rel if language_of(rel) else rel + "#" + lang_path, p)


def src_go(args):
    roots = []
    try:
        r = subprocess.run(["go", "env", "GOROOT", "GOMODCACHE"], capture_output=True, text=True,
                           timeout=30)
        if r.returncode == 0:
            roots = [x for x in r.stdout.split("\n") if x]
    except (OSError, subprocess.TimeoutExpired):
        pass
    # `go env GOROOT`, Debian's golang-*-src (/usr/share/go-*, /usr/lib/go-*), /usr/local/go
    goroots = sorted({Path(x).resolve() for x in roots[:1]} | set(Path("/usr/lib").glob("go-*"))
                     | set(Path("/usr/share").glob("go-*")) | {Path("/usr/local/go")})
    for gr in goroots:
        src = gr / "src"
        if not src.is_dir():
            continue
        ver = (gr / "VERSION").read_text().split()[0] if (gr / "VERSION").is_file() else gr.name
        lic = license_from_dir(gr) if license_from_dir(gr) != "unknown" else "BSD-3-Clause"
        for p in walk_files(src, SKIP_DIRS | {"testdata"}):
            rel = p.relative_to(src).as_posix()
            yield (f"go/{rel.split('/')[0]}", ver, lic, rel, p)
    modcache = Path(roots[1]) if len(roots) > 1 else Path.home() / "go" / "pkg" / "mod"
    if modcache.is_dir():
        for d in sorted(modcache.rglob("*@*")):
            if not d.is_dir() or "@" in d.parent.as_posix().split("/pkg/mod/")[-1]:
                continue
            mod, ver = d.relative_to(modcache).as_posix().rsplit("@", 1)
            lic = license_from_dir(d)
            for p in walk_files(d, SKIP_DIRS | {"testdata"}):
                yield (f"gomod/{mod}", ver, lic, p.relative_to(d).as_posix(), p)


def src_jdk(args):
    zips = {}
    for z in sorted(Path("/usr/lib/jvm").rglob("src.zip")) if Path("/usr/lib/jvm").is_dir() else []:
        zips.setdefault(z.resolve(), z)
    for real, z in sorted(zips.items()):
        home = z.parent.parent if z.parent.name == "lib" else z.parent
        ver = "?"
        rel_file = home / "release"
        if rel_file.is_file():
            m = re.search(r'JAVA_VERSION="([^"]+)"', rel_file.read_text(errors="replace"))
            ver = m.group(1) if m else ver
        try:
            zf = zipfile.ZipFile(real)
        except (OSError, zipfile.BadZipFile):
            continue
        for name in sorted(zf.namelist()):
            if not name.endswith(".java"):
                continue
            info = zf.getinfo(name)
            if info.file_size > MAX_FILE_BYTES:
                continue
            module = name.split("/")[0] if "/" in name else "unnamed"
            yield (f"jdk/{module}", ver, "GPL-2.0-with-classpath-exception", name,
                   (lambda zf=zf, name=name: zf.read(name)))


def src_repo(path: Path, name: str, lic: str):
    def gen(args):
        files = None
        if (path / ".git").exists():
            r = subprocess.run(["git", "-C", str(path), "ls-files", "-z"], capture_output=True)
            if r.returncode == 0:
                files = sorted(f for f in r.stdout.decode("utf-8", "replace").split("\0")
                               if f and language_of(f))
        if files is None:
            files = [p.relative_to(path).as_posix() for p in walk_files(path)]
        version = "?"
        r = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            version = r.stdout.strip()
        license = lic or license_from_dir(path)
        if license == "unknown":
            license = "own"
        for f in files:
            yield (f"repo/{name}", version, license, f, path / f)
    return gen


SOURCES = {
    "stdlib": src_stdlib,
    "site-packages": src_site_packages,
    "cargo": src_cargo,
    "npm": src_npm,
    "include": src_include,
    "go": src_go,
    "jdk": src_jdk,
}


class EvalSourceFilter:
    """Keeps the sources of moat's checked-in eval tasks (tests/eval/*.jsonl) out of the corpus,
    so that `moat eval` on those sets measures completion, not memorisation.

    A task carries only a window of its file, so a file is recognised by content: each task
    contributes its FINGERPRINT_LINES longest distinct lines (stripped, at least 24 chars); a
    corpus file that contains all of one task's fingerprint lines is dropped."""

    FINGERPRINT_LINES = 3

    def __init__(self, task_files: list[Path]):
        self.by_line: dict[str, set[int]] = {}
        self.need: list[int] = []
        for tf in task_files:
            for raw in open(tf, encoding="utf-8"):
                try:
                    t = json.loads(raw)
                except ValueError:
                    continue
                text = t.get("prefix", "") + t.get("expected", "") + t.get("suffix", "")
                lines = sorted({l.strip() for l in text.splitlines() if len(l.strip()) >= 24},
                               key=lambda l: (-len(l), l))[:self.FINGERPRINT_LINES]
                if len(lines) < self.FINGERPRINT_LINES:
                    continue
                tid = len(self.need)
                self.need.append(len(lines))
                for l in lines:
                    self.by_line.setdefault(l, set()).add(tid)

    def matches(self, text: str) -> bool:
        if not self.by_line:
            return False
        hits: dict[int, int] = {}
        for l in {l.strip() for l in text.splitlines()}:
            for tid in self.by_line.get(l, ()):
                hits[tid] = hits.get(tid, 0) + 1
                if hits[tid] == self.need[tid]:
                    return True
        return False


def collect(source: str, gen, args, out: Path) -> dict:
    items = list(gen(args))
    # Whole packages in a deterministic but mixed order, so a byte budget takes a sample of
    # packages rather than the alphabetically first ones.
    items.sort(key=lambda it: (stable_hash01(it[0]), it[0], it[3]))
    writer = ShardWriter(out, source)
    manifest = []
    n_bytes = 0
    budget = int(args.max_mb_per_source * (1 << 20)) if args.max_mb_per_source else None
    skipped = {"unreadable_or_binary": 0, "budget": 0, "eval_task_source": 0}
    eval_filter = getattr(args, "eval_filter", None)
    for package, version, lic, rel, src in items:
        if args.max_files_per_source and writer.count >= args.max_files_per_source:
            skipped["budget"] += 1
            continue
        if budget is not None and n_bytes >= budget:
            skipped["budget"] += 1
            continue
        if callable(src):
            src = src()
        text = decode(src) if isinstance(src, bytes) else read_source(src)
        if text is None:
            skipped["unreadable_or_binary"] += 1
            continue
        if eval_filter is not None and eval_filter.matches(text):
            skipped["eval_task_source"] += 1
            continue
        shown = rel.split("#")[0]
        lang = language_of(rel.split("#")[-1])
        rec = {"id": sha256_text(f"{source}:{package}:{shown}")[:16], "source": source,
               "package": package, "version": version, "license": lic, "path": shown,
               "language": lang, "content": text}
        writer.write(rec)
        n_bytes += len(text.encode("utf-8", "surrogatepass"))
        manifest.append({k: v for k, v in rec.items() if k != "content"}
                        | {"bytes": len(text), "sha256": sha256_text(text)})
    writer.close()
    with open(out / f"{source}.manifest.jsonl", "w") as f:
        for m in manifest:
            f.write(json.dumps(m, ensure_ascii=False) + "\n")
    by_lang: dict = {}
    for m in manifest:
        d = by_lang.setdefault(m["language"], {"files": 0, "bytes": 0})
        d["files"] += 1
        d["bytes"] += m["bytes"]
    stats = {"source": source, "files": writer.count, "bytes": n_bytes,
             "packages": len({m["package"] for m in manifest}), "by_language": by_lang,
             "skipped": skipped}
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=WORK / "corpus")
    ap.add_argument("--sources", default=",".join(SOURCES),
                    help="comma-separated subset of: " + ",".join(SOURCES) + " ('' for none)")
    ap.add_argument("--repo", action="append", default=[],
                    help="PATH or PATH=NAME: a directory of your own code (repeatable)")
    ap.add_argument("--repo-license", default="", help="licence of the --repo code (default: "
                    "detected from its LICENSE file, else 'own')")
    ap.add_argument("--npm-pack", nargs="*", default=[], help="npm packages to `npm pack`")
    ap.add_argument("--max-mb-per-source", type=float, default=0, help="0 = no limit")
    ap.add_argument("--max-files-per-source", type=int, default=0, help="0 = no limit")
    ap.add_argument("--force", action="store_true", help="redo sources already collected")
    ap.add_argument("--exclude-tasks", nargs="*", type=Path,
                    default=sorted((HERE.parent.parent / "tests" / "eval").glob("*.jsonl")),
                    help="task files whose source files are kept out of the corpus "
                         "(default: moat's checked-in eval sets, tests/eval/*.jsonl)")
    args = ap.parse_args(argv)
    args.eval_filter = EvalSourceFilter(args.exclude_tasks) if args.exclude_tasks else None

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    todo = [(s, SOURCES[s]) for s in args.sources.split(",") if s]
    for s, _ in todo:
        if s not in SOURCES:
            ap.error(f"unknown source {s}")
    for spec in args.repo:
        p, _, name = spec.partition("=")
        p = Path(p).resolve()
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", name or p.name)
        todo.append((f"repo-{name}", src_repo(p, name, args.repo_license)))

    all_stats = {}
    for source, gen in todo:
        done = out / f"{source}.done"
        if done.exists() and not args.force:
            log(f"corpus: {source}: already collected ({done}); skipping (--force to redo)")
            all_stats[source] = json.loads(done.read_text())
            continue
        for old in out.glob(f"{source}-*.jsonl.gz"):
            old.unlink()
        log(f"corpus: collecting {source} ...")
        stats = collect(source, gen, args, out)
        write_json(done, stats)
        all_stats[source] = stats
        log(f"corpus: {source}: {stats['files']} files, {stats['bytes'] / 1e6:.1f} MB, "
            f"{stats['packages']} packages")
    # combined manifest of everything collected so far
    with open(out / "manifest.jsonl", "w") as f:
        for m in sorted(out.glob("*.manifest.jsonl")):
            f.write(m.read_text())
    summary = {s: st for s, st in sorted(all_stats.items())}
    write_json(out / "summary.json", summary)
    print(f"{'source':<16}{'files':>8}{'MB':>9}{'packages':>10}")
    for s, st in summary.items():
        print(f"{s:<16}{st['files']:>8}{st['bytes'] / 1e6:>9.1f}{st['packages']:>10}")


if __name__ == "__main__":
    main()
