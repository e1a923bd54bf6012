"""Resuming compares settings: one added after a run was stored counts as the value that run had."""

import pytest

from tfsal.errors import TfsalError
from tfsal.train.common import ADDED_SETTINGS, RunState, check_resumable


def test_a_run_stored_before_gamma_existed_resumes_only_without_gamma(tmp_path):
    old = RunState(settings={"lr": 1e-3, "size": [64, 64]})  # state.json written before the gamma setting
    assert "gamma" in ADDED_SETTINGS
    check_resumable(old, {"lr": 1e-3, "size": [64, 64], "gamma": [1.0, 1.0]}, tmp_path)
    with pytest.raises(TfsalError, match=r"gamma: \[1.0, 1.0\] -> \[0.5, 2.0\]"):
        check_resumable(old, {"lr": 1e-3, "size": [64, 64], "gamma": [0.5, 2.0]}, tmp_path)


def test_a_stored_gamma_must_match(tmp_path):
    run = RunState(settings={"gamma": [0.5, 2.0]})
    check_resumable(run, {"gamma": [0.5, 2.0]}, tmp_path)
    with pytest.raises(TfsalError, match="cannot resume"):
        check_resumable(run, {"gamma": [1.0, 1.0]}, tmp_path)


@pytest.mark.parametrize("name, before, other", [("pooling", "avg", "max"), ("location_weight", 0.0, 1.0),
                                                     ("film_tone", 0.0, 0.5),
                                                     ("backbone", "mobilenet", "mobilenet_v3_small")])
def test_a_classifier_run_stored_before_a_setting_existed_resumes_with_its_old_value(tmp_path, name, before, other):
    old = RunState(settings={"lr": 1e-3})  # written before the setting existed: the run had its old behaviour
    check_resumable(old, {"lr": 1e-3, name: before}, tmp_path)
    with pytest.raises(TfsalError, match=f"{name}: {before!r} -> {other!r}"):
        check_resumable(old, {"lr": 1e-3, name: other}, tmp_path)
