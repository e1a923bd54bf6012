"""Both install modes give the `tfsal` command and find files shipped in saved_models/.

Each test copies the source tree, writes a placeholder file into the copy's saved_models/,
installs the copy into a new virtual environment with pip (without dependencies; the only one
the checks need, click, is linked in) and asks the installed tfsal where its shipped files
are, from a folder outside the source tree.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import tfsal

pytestmark = pytest.mark.slow

SOURCE = Path(__file__).resolve().parents[1]


def _source_tree_available():
    return (SOURCE / "setup.py").is_file() and (SOURCE / "cli" / "main.py").is_file()


def _run(*args, cwd):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True, cwd=cwd).stdout


@pytest.mark.skipif(not _source_tree_available(), reason="needs the source tree")
@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_install_finds_shipped_models_and_gives_the_command(tmp_path, editable):
    copy = tmp_path / "src"
    copy.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(SOURCE / name, copy / name)
    for name in ("tfsal", "cli", "saved_models"):
        shutil.copytree(SOURCE / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.keras"))
    (copy / "saved_models" / "placeholder.keras").write_text("placeholder, not a model\n")

    env_dir = tmp_path / "env"
    _run(sys.executable, "-m", "venv", env_dir, cwd=tmp_path)
    python = env_dir / "bin" / "python"
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path).strip())
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "click").symlink_to(Path(click.__file__).parent)
    (purelib / "_test_deps.pth").write_text(f"{deps}\n")

    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", *(["-e"] if editable else []), copy, cwd=tmp_path)

    code = "import tfsal.util.resources as r, tfsal.cli.main; print(r.saved_model_path('placeholder.keras'))"
    where = _run(python, "-c", code, cwd=tmp_path).strip()
    expected_root = copy if editable else purelib
    assert Path(where).is_relative_to(expected_root), where
    assert Path(where).read_text().startswith("placeholder")
    assert tfsal.__version__ in _run(env_dir / "bin" / "tfsal", "--version", cwd=tmp_path)
    assert "data" in _run(env_dir / "bin" / "tfsal", "--help", cwd=tmp_path)
    # every package of the source tree is installed (setup.py lists the stages)
    listed = "import pkgutil, tfsal; print(' '.join(m.name for m in pkgutil.iter_modules(tfsal.__path__) if m.ispkg))"
    installed = set(_run(python, "-c", listed, cwd=tmp_path).split())
    source = {p.parent.name for p in (SOURCE / "tfsal").glob("*/__init__.py")}
    assert source <= installed, source - installed
    typed = "import importlib.resources as r; print(r.files('tfsal').joinpath('py.typed').is_file())"
    assert _run(python, "-c", typed, cwd=tmp_path).strip() == "True"  # PEP 561: the package is typed
