"""Explaining image files and writing the outputs of ``tfsal explain``.

Per image ``<stem>.json`` (input as given or redacted, its SHA-256, method, target, scores,
area, steps, seconds, files, and the run's :mod:`~tfsal.outputs.provenance`),
``<stem>_overlay.png``, ``<stem>_mask.png`` and, where the method makes them,
``<stem>_counterfactual.png`` (16-bit) and ``<stem>_saliency.npy``; for DICOM inputs with
``dicom=True``, ``<stem>_seg.dcm`` and ``<stem>_overlay.dcm`` too (:mod:`tfsal.outputs.dicom_results`);
every file written atomically, the JSON last, so an image with a JSON is complete. Images are
read as :func:`tfsal.data.image_io.read_image` does, fitted to the classifier's input with the
same aspect-preserving padding as training (:class:`tfsal.data.resize.PadResize`), explained
there, and every output is mapped back to the image's own pixels. A file that cannot be read or
explained is reported and the others go on. One batch's explanation and writing
(:func:`explain_chunk`) is shared with the Beam workers of ``tfsal explain-batch``
(:mod:`tfsal.batch.pipeline`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfsal.data.image_io import file_format, read_image
from tfsal.data.resize import PadResize
from tfsal.errors import TfsalError
from tfsal.explain import registry
from tfsal.explain.explanation import Explanation
from tfsal.explain.interface import ImageExplainer
from tfsal.outputs.drawing import encode_png, explanation_overlay
from tfsal.outputs.provenance import read_record, run_provenance
from tfsal.util import atomic
from tfsal.util.hashing import file_sha256

log = logging.getLogger(__name__)

__all__ = ["FileResult", "explain_chunk", "explain_files", "fit_image", "read_fitted", "read_input", "remove_outputs",
           "send_dicom_files", "start_results", "to_image_size", "unique_stems", "write_outputs"]

def shown_path(path: str | os.PathLike, redact: bool = False) -> str:
    """An input as outputs, tables and messages name it: the path as given, or with ``redact``
    (``--redact-paths``) the first 16 hex digits of the SHA-256 of its absolute path and its file
    name, ``<hash>/<name>``: folder names can hold patient identifiers (CBIS-DDSM's do), and the
    hash still tells inputs apart and is the same in every run."""
    if not redact:
        return str(path)
    digest = hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{digest}/{Path(path).name}"


@dataclass
class FileResult:
    """What happened to one input: its stem and record when written, else the error. ``shown``
    is the input as outputs and messages name it (:func:`shown_path`); None: its path. Once read
    (:func:`read_input`), ``sha256`` is its file's and ``read_seconds`` the time reading took."""

    path: str
    stem: str
    record: dict | None = None
    error: str | None = None
    files: list[str] = field(default_factory=list)
    shown: str | None = None
    sha256: str | None = None
    read_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def of(cls, path: str, stem: str, redact: bool = False) -> FileResult:
        """A pending result for ``path``, shown as :func:`shown_path` shows it with ``redact``."""
        return cls(path, stem, shown=shown_path(path, True) if redact else None)

    @property
    def label(self) -> str:
        return self.path if self.shown is None else self.shown

    def fail(self, message: str) -> None:
        """Record the error ``message``, with the path in it shown as :attr:`label`."""
        self.error = message.replace(self.path, self.label) if self.shown is not None else message


def unique_stems(paths, out: str | os.PathLike | None = None, redact: bool = False) -> list[str]:
    """Output stems: each input's file name without suffix, else that name numbered (``a_2``,
    ``a_3``...) with the first number no other input's stem takes and, when ``out`` is given, whose
    ``<stem>.json`` there is absent or names this very input. So no two inputs share a stem, and no
    input's outputs overwrite those an earlier run wrote for another input; a rerun of the same
    list gets the same stems (what ``explain-batch`` resumes by). With ``redact``, a JSON names its
    input as :func:`shown_path` does."""
    paths = [str(p) for p in paths]
    natural = [Path(p).name.split(".")[0] or "image" for p in paths]
    taken = set()

    def free(stem: str, shown: str) -> bool:
        owner = None if out is None else _owner(Path(out) / f"{stem}.json")
        return stem not in taken and owner in (None, shown)

    stems = []
    for path, stem in zip(paths, natural, strict=True):
        candidate, number, shown = stem, 1, shown_path(path, redact)
        while not free(candidate, shown):
            number += 1
            candidate = f"{stem}_{number}"
        taken.add(candidate)
        stems.append(candidate)
    return stems


def _owner(record: Path) -> str | None:
    """The input an existing per-image JSON names; "" for one that cannot be read (never reused)."""
    if not record.exists():
        return None
    content = read_record(record)
    return "" if content is None else str(content.get("input", ""))


def remove_outputs(out: Path, stem: str, record: dict) -> None:
    """Remove an earlier run's outputs of one input: the files its JSON ``record`` lists (those
    named ``<stem>_...`` only) and then the JSON, before the input is explained again."""
    for name in record.get("files") or []:
        if isinstance(name, str) and name.startswith(f"{stem}_") and "/" not in name and "\\" not in name:
            (out / name).unlink(missing_ok=True)
    (out / f"{stem}.json").unlink(missing_ok=True)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_outputs(out: Path, result: FileResult, image: np.ndarray, explanation: Explanation, provenance: dict,
                  timing: dict, *, steps: int | None = None, dicom: bool = False, style: str = "outline",
                  scale: float = 1.0) -> dict:
    """Write one input's outputs (see the module docstring) and return its JSON record.

    Args:
        out: the output folder.
        result: the input's :class:`FileResult` (its stem, path, shown name and hash).
        image: the image as read; explanation: at the image's size.
        provenance: :func:`~tfsal.outputs.provenance.run_provenance` of the run.
        timing: ``{"explain_batch": seconds, "batch_images": n}`` of the explanation the input
            was part of; its read and write times are added, and ``seconds`` is its own total
            (its read and write, and its share of the batch's explanation).
        steps: the optimisation steps, or None for a one-pass method.
        dicom: for a DICOM input, the Segmentation and the Secondary Capture too.
        style, scale: the overlay's (:func:`~tfsal.outputs.drawing.explanation_overlay`); ``scale``
            is how much the working canvas was enlarged to the image.

    All or nothing: when any file cannot be made or written, those this call wrote are removed,
    and so is an earlier ``<stem>.json`` (which would name them), before the error is raised.

    Raises:
        OSError: a file cannot be written.
        TfsalError: with ``dicom``, the DICOM results cannot be made (see
            :func:`tfsal.outputs.dicom_results.write_dicom_results`).
    """
    tick, stem = time.time(), result.stem
    overlay = explanation_overlay(image, explanation, style, scale=scale)
    files = {f"{stem}_overlay.png": encode_png(overlay),
             f"{stem}_mask.png": encode_png(explanation.mask.astype(np.uint8) * 255)}
    if explanation.counterfactual is not None:
        counterfactual = np.clip(explanation.counterfactual, 0, 1) * 65535 + 0.5
        files[f"{stem}_counterfactual.png"] = encode_png(counterfactual.astype(np.uint16))
    if registry.kind(explanation.method) == "mask":  # its saliency S = 1 - M is worth keeping
        files[f"{stem}_saliency.npy"] = _npy_bytes(explanation.saliency.astype(np.float32))
    written = []
    try:
        if dicom and file_format(result.path) == "dicom":  # first: the step most likely to refuse an input
            from tfsal.outputs.dicom_results import write_dicom_results

            written += write_dicom_results(result.path, explanation.mask, overlay, out, stem)
        for name, data in files.items():
            atomic.write_bytes(out / name, data)
            written.append(name)
        timing = {"read": round(result.read_seconds, 3), **timing, "write": round(time.time() - tick, 3)}
        record = _record(result, explanation, steps, timing, sorted(written), provenance)
        atomic.write_text(out / f"{stem}.json", json.dumps(record, indent=2) + "\n")
    except BaseException:
        for name in [*written, f"{stem}.json"]:
            (out / name).unlink(missing_ok=True)
        raise
    return record


def _record(result: FileResult, explanation: Explanation, steps, timing: dict, files: list, provenance: dict) -> dict:
    """The per-image JSON record; ``seconds`` is the image's read and write plus its share of its batch."""
    share = timing["explain_batch"] / max(1, timing["batch_images"])
    after = explanation.score_counterfactual
    return {"input": result.label, "input_sha256": result.sha256, "method": explanation.method,
            "target": explanation.target, "score_original": round(explanation.score_original, 6),
            "score_counterfactual": None if after is None else round(after, 6),
            # the region's counterfactual was made by the inpainter and scored by the classifier
            "verified": after is not None and explanation.counterfactual is not None,
            "area_fraction": round(explanation.area_fraction, 6), "steps": steps,
            "seconds": round(timing["read"] + share + timing["write"], 3), "timing": timing, "files": files,
            "provenance": provenance}


def to_image_size(explanation: Explanation, fit: PadResize | None, image: np.ndarray) -> Explanation:
    """The explanation mapped from the working canvas back onto the image's pixels."""
    if fit is None:
        return explanation
    mask = fit.invert_mask(explanation.mask)
    organ = fit.invert_mask(explanation.organ)
    counterfactual = None
    if explanation.counterfactual is not None:
        counterfactual = np.where(mask, fit.invert(explanation.counterfactual), image[:, :, 0]).astype(np.float32)
    return Explanation(explanation.method, explanation.target, fit.invert(explanation.saliency), mask, organ,
                       explanation.score_original, explanation.score_counterfactual, counterfactual,
                       explanation.loss, None if explanation.grown is None else fit.invert_mask(explanation.grown),
                       image[:, :, 0])


def start_results(paths, out: str | os.PathLike, redact: bool = False) -> tuple[Path, list[FileResult]]:
    """The output folder (created) and one pending :class:`FileResult` per input, with unique
    stems; with ``redact``, each shown as :func:`shown_path` shows it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in paths]
    return out, [FileResult.of(p, s, redact) for p, s in zip(paths, unique_stems(paths, out, redact), strict=True)]


def read_fitted(result: FileResult, size) -> tuple | None:
    """``(image, fit, working)`` for one input: the image as read (:func:`read_input`), the
    :class:`PadResize` onto ``size`` (None when it already has that size or ``size`` is None) and
    the image on the working canvas; None, with ``result.error`` set, when the file cannot be read."""
    try:
        image = read_input(result)
    except TfsalError as exc:
        result.fail(str(exc))
        return None
    return image, *fit_image(image, size)


def read_input(result: FileResult) -> np.ndarray:
    """The input's image (:func:`~tfsal.data.image_io.read_image`), setting ``result.sha256`` and
    ``result.read_seconds``.

    Raises:
        TfsalError: the file cannot be read as an image.
    """
    tick = time.time()
    image, _ = read_image(result.path)
    try:
        result.sha256 = file_sha256(result.path)
    except OSError as exc:  # it was just read: only a file removed or locked in between gets here
        raise TfsalError(f"{result.path}: cannot read: {exc.strerror or exc}") from None
    result.read_seconds = time.time() - tick
    return image


def fit_image(image: np.ndarray, size) -> tuple[PadResize | None, np.ndarray]:
    """``(fit, working)``: the :class:`PadResize` of ``image`` onto ``size`` (None when it already
    has that size or ``size`` is None) and the image on that working canvas."""
    fit = PadResize.fit(image.shape[:2], size) if size and tuple(image.shape[:2]) != tuple(size) else None
    return fit, fit.apply(image) if fit else image


def explain_files(paths, out: str | os.PathLike, explainer: ImageExplainer, targets=None, progress: bool = False,
                  dicom: bool = False, dicom_send=None, redact: bool = False,
                  style: str = "outline") -> list[FileResult]:
    """Explain image files in batches of ``explainer.batch_size`` and write their outputs to ``out``:
    the one loop of ``tfsal explain``, ``tfsal predict`` and (per batch, :func:`explain_chunk`) the
    Beam workers of ``tfsal explain-batch``.

    Args:
        paths: image files (DICOM, PNG, JPEG, TIFF, NPY).
        out: output folder (created).
        explainer: any :class:`~tfsal.explain.interface.ImageExplainer`: a local explainer or the
            served one; images are fitted to its ``input_size`` and its ``steps`` are recorded.
        targets: the class to explain for every image, or None for the default.
        progress: a progress bar on stderr.
        dicom: for DICOM inputs, write a Segmentation and a Secondary Capture of the overlay too.
        dicom_send: a :func:`tfsal.outputs.dicom_send.parse_dicom_address` address to C-STORE them
            to (implies ``dicom``).
        redact: name inputs in the JSON and the errors by :func:`shown_path` (a hash and the file
            name), not by their path.
        style: the overlay's, one of :data:`tfsal.outputs.drawing.STYLES`.

    Returns:
        One :class:`FileResult` per path, in order.
    """
    from tqdm import tqdm

    out, results = start_results(paths, out, redact)
    provenance = run_provenance(explainer, style, targets, dicom or dicom_send is not None)
    bar = tqdm(total=len(results), unit="image", disable=not progress, leave=False)
    for start in range(0, len(results), explainer.batch_size):
        chunk = results[start:start + explainer.batch_size]
        loaded = [(result, *read) for result in chunk if (read := read_fitted(result, explainer.input_size))]
        if loaded:
            explain_chunk(loaded, out, explainer, targets, dicom=dicom, dicom_send=dicom_send, style=style,
                          provenance=provenance)
        bar.update(len(chunk))
    bar.close()
    return results


def explain_chunk(loaded, out: Path, explainer: ImageExplainer, targets, dicom: bool = False,
                  dicom_send=None, style: str = "outline", provenance: dict | None = None) -> list[Explanation | None]:
    """Explain one batch of read images together and write each one's outputs to ``out``.

    Args:
        loaded: ``(result, image, fit, working)`` per image: its pending :class:`FileResult`, the
            image as read, and :func:`fit_image`'s pair.
        out: the output folder (existing).
        explainer: an :class:`~tfsal.explain.interface.ImageExplainer`.
        targets, dicom, dicom_send, style: as :func:`explain_files`.
        provenance: the run's :func:`run_provenance` (computed once per run by the caller: it
            fingerprints a model made in memory); None computes it here.

    Returns:
        Per image, its explanation at the image's size, or None where it failed: then its
        ``result.error`` says why (``result.record`` and ``result.files`` are set otherwise).
    """
    tick = time.time()
    try:
        explanations = explainer.explain([working for *_, working in loaded], targets=targets)
    except (ValueError, TfsalError) as exc:
        for result, *_ in loaded:
            result.fail(f"{result.path}: cannot explain: {exc}")
        return [None] * len(loaded)
    timing = {"explain_batch": round(time.time() - tick, 3), "batch_images": len(loaded)}
    provenance = provenance or run_provenance(explainer, style, targets, dicom or dicom_send is not None)
    sized: list[Explanation | None] = []
    for (result, image, fit, _), explanation in zip(loaded, explanations, strict=True):
        explanation = to_image_size(explanation, fit, image)
        try:
            result.record = write_outputs(out, result, image, explanation, provenance, timing, steps=explainer.steps,
                                          dicom=dicom or dicom_send is not None, style=style,
                                          scale=1.0 / fit.scale if fit else 1.0)
            result.files = result.record["files"]
            sized.append(explanation)
        except OSError as exc:
            result.fail(f"{result.path}: cannot write outputs: {exc.strerror or exc}")
            sized.append(None)
        except TfsalError as exc:  # its message names the file already
            result.fail(str(exc))
            sized.append(None)
    if dicom_send is not None:
        send_dicom_files([result for result, *_ in loaded], out, dicom_send)
    return sized


def send_dicom_files(results: list[FileResult], out: Path, address) -> None:
    """C-STORE the DICOM results of the written inputs to ``address``; an input whose objects
    are not stored gets ``result.error`` (its other outputs stay written)."""
    from tfsal.outputs.dicom_send import send_dicom

    for result in results:  # one association per input, so that one refusal fails that input only
        paths = [out / name for name in result.files if name.endswith(".dcm")] if result.ok else []
        if paths:
            try:
                send_dicom(paths, address)
            except TfsalError as exc:
                result.fail(f"{result.path}: DICOM results written but not sent: {exc}")
