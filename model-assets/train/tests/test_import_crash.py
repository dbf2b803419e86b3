"""Crash safety of `moat model import` (issue 16): the import builds everything in a temporary
sibling folder (`.import-NAME-PID`) and installs it with renames (`import_model.install`). A child
process runs the install and is killed with SIGKILL before each of its file-system steps in turn;
after each kill, the next import's `clean_stale` must leave the models folder with the old model
or the new one, whole, and no temporary folder.

    cd model-assets/train && .venv/bin/python -m pytest tests/test_import_crash.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

pytest.importorskip("numpy")
import import_model  # noqa: E402

CHILD = r"""
import os, shutil, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import import_model

kill_at = int(sys.argv[4])
steps = 0

def step():
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

rename, rmtree = Path.rename, shutil.rmtree
def killing_rename(self, target):
    step()
    return rename(self, target)
def killing_rmtree(path, *a, **k):
    step()
    return rmtree(path, *a, **k)
Path.rename = killing_rename
shutil.rmtree = killing_rmtree
import_model.install(Path(sys.argv[2]), Path(sys.argv[3]))
print("installed", steps)
"""


def model(folder: Path, tag: str) -> None:
    folder.mkdir(parents=True)
    (folder / "model.toml").write_text(f"# {tag}\n")
    (folder / "model.onnx").write_bytes(tag.encode() * 1000)


def whole(folder: Path) -> str | None:
    """The model's tag when the folder holds a whole model."""
    toml, onnx = folder / "model.toml", folder / "model.onnx"
    if not (toml.is_file() and onnx.is_file()):
        return None
    tag = toml.read_text().removeprefix("# ").strip()
    return tag if onnx.read_bytes() == tag.encode() * 1000 else None


@pytest.mark.parametrize("replacing", [True, False])
@pytest.mark.parametrize("kill_at", [1, 2, 3, 0])
def test_a_kill_at_any_install_step_leaves_one_whole_model(tmp_path, replacing, kill_at):
    models = tmp_path / "models"
    models.mkdir()
    out = models / "coder"
    if replacing:
        model(out, "old")
    # What the import built, in its temporary folder; the folder's pid (a number no process
    # has) makes it stale, as a killed import's is.
    staging = models / f".import-coder-{os.getpid() + 10_000_000}"
    final = staging / "model"
    model(final, "new")
    result = subprocess.run([sys.executable, "-c", CHILD, str(HERE), str(final), str(out),
                             str(kill_at)], capture_output=True, text=True)
    killed = result.returncode == -9
    assert killed == (kill_at in (1, 2, 3) and (replacing or kill_at == 1)), result
    import_model.clean_stale(models)
    left = sorted(p.name for p in models.iterdir())
    assert left == ["coder"] or (left == [] and not replacing and killed), left
    if left:
        tag = whole(out)
        assert tag in ("old", "new"), (kill_at, replacing, tag)
        if not killed:
            assert tag == "new"
    else:
        # A first import killed before its model arrived: nothing half-made is left.
        assert not out.exists()


def test_stale_folders_of_live_imports_are_left_alone(tmp_path):
    models = tmp_path / "models"
    model(models / f".import-coder-{os.getpid()}" / "model", "new")
    model(models / f".replaced-other-{os.getpid()}", "old")
    import_model.clean_stale(models)
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [f".import-coder-{os.getpid()}", f".replaced-other-{os.getpid()}"])
