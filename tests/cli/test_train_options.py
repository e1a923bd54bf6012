"""`tfsal train classifier` refuses bad settings before it reads data or trains (fast: nothing runs)."""

import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli


def _train(tmp_path, *args):
    return CliRunner().invoke(cli, ["train", "classifier", "--data", str(tmp_path), "--out",
                                    str(tmp_path / "c.keras"), *args])


@pytest.mark.parametrize("value", ["2,1", "0,2", "1", "a,b", "1,inf"])
def test_a_bad_gamma_range_is_refused(tmp_path, value):
    result = _train(tmp_path, "--gamma", value)
    assert result.exit_code == 2
    assert "expected LOW,HIGH with 0 < LOW <= HIGH" in result.output
    assert not (tmp_path / "c.keras").exists()


@pytest.mark.parametrize("args, message", [
    (["--no-augment", "--gamma", "0.5,2"], "gamma is an augmentation"),
    (["--no-augment", "--film-tone", "0.5"], "film_tone is an augmentation"),
    (["--film-tone", "1.5"], "1.5 is not in the range"),
    (["--epochs", "0", "--pretrain-epochs", "0"], "nothing to train"),
])
def test_settings_that_cannot_train_are_a_usage_error_not_a_traceback(tmp_path, args, message):
    result = _train(tmp_path, *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
