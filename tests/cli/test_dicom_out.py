"""`--dicom-out` and `--dicom-send` on `tfsal explain` and `tfsal explain-batch`: a Segmentation equal
to the PNG mask and a Secondary Capture, in the source's study, stored by a loopback SCP."""

import json

import cv2
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.data.dicom import write_mammogram_dicom

from ..explain.conftest import mammogram_like

hd = pytest.importorskip("highdicom")

OPTIONS = ["--steps", 20, "--batch-size", 1]


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """A DICOM mammogram with a bright 'mass' (12 bits stored) and a PNG one."""
    folder = tmp_path_factory.mktemp("in")
    image = mammogram_like(0)[..., 0]
    write_mammogram_dicom(folder / "scan.dcm", (image * 4095).astype(np.uint16))
    cv2.imwrite(str(folder / "plain.png"), (image * 65535).astype(np.uint16))
    return folder


def assert_dicom_results(out, stem, source):
    """The SEG's frame is the PNG mask, it references the source; both objects in its study, new series."""
    mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED) > 0
    assert mask.any()
    seg = hd.seg.segread(out / f"{stem}_seg.dcm")
    source = pydicom.dcmread(source)
    frames = seg.get_pixels_by_source_instance(source_sop_instance_uids=[source.SOPInstanceUID],
                                               segment_numbers=[1])
    np.testing.assert_array_equal(frames[0, :, :, 0] > 0, mask)
    overlay = pydicom.dcmread(out / f"{stem}_overlay.dcm")
    for dataset in (seg, overlay):
        assert dataset.StudyInstanceUID == source.StudyInstanceUID
        assert dataset.SeriesInstanceUID != source.SeriesInstanceUID
    assert overlay.pixel_array.shape == (*mask.shape, 3)
    assert {f"{stem}_seg.dcm", f"{stem}_overlay.dcm"} <= set(json.loads((out / f"{stem}.json").read_text())["files"])


@pytest.mark.slow
def test_explain_writes_seg_and_secondary_capture_for_dicom_inputs_only(tmp_path, scans, blob_models):
    result = run("explain", scans / "scan.dcm", scans / "plain.png", "--out", tmp_path, "--dicom-out", *OPTIONS,
                 *blob_models)
    assert result.exit_code == 0, result.output
    assert_dicom_results(tmp_path, "scan", scans / "scan.dcm")
    assert not list(tmp_path.glob("plain*.dcm"))  # nothing DICOM-native for a PNG input


@pytest.mark.slow
def test_explain_sends_both_objects_to_a_dicom_node(tmp_path, scans, blob_models, scp_factory):
    scp = scp_factory()
    result = run("explain", scans / "scan.dcm", "--out", tmp_path, "--dicom-send", f"STORESCP@127.0.0.1:{scp.port}",
                 *OPTIONS, *blob_models)
    assert result.exit_code == 0, result.output
    written = {pydicom.dcmread(tmp_path / name).SOPInstanceUID for name in ("scan_seg.dcm", "scan_overlay.dcm")}
    assert {dataset.SOPInstanceUID for dataset in scp.received} == written


@pytest.mark.slow
def test_a_node_that_refuses_fails_the_input_in_one_line(tmp_path, scans, blob_models, scp_factory):
    scp = scp_factory(status=0xA700)  # out of resources
    result = run("explain", scans / "scan.dcm", "--out", tmp_path, "--dicom-send", f"STORESCP@127.0.0.1:{scp.port}",
                 *OPTIONS, *blob_models)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "scan.dcm" in line and "not sent" in line
    assert (tmp_path / "scan_seg.dcm").exists()  # written, only not stored


def test_a_bad_address_is_a_usage_error(tmp_path, scans):
    result = run("explain", scans / "scan.dcm", "--out", tmp_path, "--dicom-send", "no-port-here")
    assert result.exit_code == 2 and "--dicom-send" in result.output


@pytest.mark.slow  # a Beam pipeline
def test_explain_batch_writes_the_same_dicom_results(tmp_path, scans, blob_models, scp_factory):
    scp = scp_factory()
    result = run("explain-batch", "--input", scans, "--out", tmp_path, "--dicom-send",
                 f"STORESCP@127.0.0.1:{scp.port}", "--direct-running-mode", "in_memory", *OPTIONS, *blob_models)
    assert result.exit_code == 0, result.output
    assert_dicom_results(tmp_path, "scan", scans / "scan.dcm")
    assert len(scp.received) == 2 and not list(tmp_path.glob("plain*.dcm"))


@pytest.mark.slow
def test_an_input_whose_dicom_results_fail_leaves_no_file_and_the_others_are_written(tmp_path, scans, blob_models):
    source = pydicom.dcmread(scans / "scan.dcm")
    del source.SeriesInstanceUID  # readable as an image, but no Segmentation can reference it
    bad = tmp_path / "in" / "noseries.dcm"
    bad.parent.mkdir()
    source.save_as(bad)
    out = tmp_path / "out"
    out.mkdir()
    (out / "noseries.json").write_text(json.dumps({"input": str(bad), "files": ["noseries_mask.png"]}))
    result = run("explain", bad, scans / "plain.png", "--out", out, "--dicom-out", *OPTIONS, *blob_models)
    assert result.exit_code == 1 and "lacks SeriesInstanceUID" in result.output
    assert not list(out.glob("noseries*"))  # no PNG without its JSON, and no stale JSON naming them
    assert (out / "plain.json").exists() and (out / "plain_mask.png").exists()
