import pytest

from tfsal.errors import TfsalError
from tfsal.util import resources


def test_saved_models_dir_is_the_installed_package_folder():
    assert (resources.saved_models_dir() / "README.md").is_file()


def test_missing_shipped_model_names_the_file():
    with pytest.raises(TfsalError, match=r"'no_such_model\.keras' not found"):
        resources.saved_model_path("no_such_model.keras")


def test_import_tfsal_is_light(tmp_path):
    import subprocess
    import sys

    code = "import sys, tfsal; print(any(m in sys.modules for m in ('tensorflow', 'matplotlib', 'apache_beam')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.strip() == "False"
