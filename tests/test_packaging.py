"""Both install modes give the `tfsal` command and find files shipped in saved_models/.

Each test copies the source tree, writes a placeholder file into the copy's saved_models/,
installs the copy into a new virtual environment (no dependencies are installed: the
environment sees this one's site-packages through a .pth file) and asks the installed tfsal
where its shipped files are.
"""

import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import tfsal

pytestmark = pytest.mark.slow

SOURCE = Path(__file__).resolve().parents[1]


def _source_tree_available():
    return (SOURCE / "setup.py").is_file() and (SOURCE / "cli" / "main.py").is_file()


@pytest.mark.skipif(not _source_tree_available(), reason="needs the source tree")
@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_install_finds_shipped_models_and_gives_the_command(tmp_path, editable):
    copy = tmp_path / "src"
    copy.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(SOURCE / name, copy / name)
    for name in ("tfsal", "cli", "saved_models"):
        shutil.copytree(SOURCE / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.keras"))
    (copy / "saved_models" / "placeholder.keras").write_text("placeholder, not a model\n")

    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parents = [sysconfig.get_path("purelib"), *site.getsitepackages()]
    Path(purelib, "_parent_site.pth").write_text("\n".join(dict.fromkeys(parents)) + "\n")

    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
               "--no-build-isolation", *(["-e"] if editable else []), str(copy)]
    subprocess.run(install, check=True, capture_output=True)

    where = subprocess.run(
        [str(python), "-c",
         "import tfsal.resources as r, tfsal.cli.main; print(r.saved_model_path('placeholder.keras'))"],
        capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    expected_root = copy if editable else Path(purelib)
    assert Path(where).is_relative_to(expected_root), where
    assert Path(where).read_text().startswith("placeholder")

    version = subprocess.run([str(env_dir / "bin" / "tfsal"), "--version"], capture_output=True, text=True,
                             check=True).stdout
    assert tfsal.__version__ in version
    helptext = subprocess.run([str(env_dir / "bin" / "tfsal"), "--help"], capture_output=True, text=True,
                              check=True).stdout
    assert "data" in helptext
