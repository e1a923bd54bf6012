"""``tfsal explain-batch``: the counterfactual explanation of many image files as an Apache Beam pipeline.

The launcher lists the inputs (a manifest CSV, a folder or a glob), gives them the output stems
``tfsal explain`` gives the same list (:func:`tfsal.outputs.files.unique_stems`: a stem whose
``<stem>.json`` names another input is never reused) and leaves out those whose ``<stem>.json``
in the output folder was made from the same file content in the same way
(:func:`tfsal.outputs.provenance.same_run`), so a rerun resumes where the last one stopped; the
earlier outputs of an input explained again are removed first. The pipeline::

    Create(path, stem) -> ReadImage -> BatchElements -> ExplainImages -> rows (JSON lines)
                              \\-> dead letters (unreadable files) ---------/

``ExplainImages`` loads the models once per worker (``DoFn.setup``), or talks to a TF Serving
endpoint, and writes each image's outputs exactly as ``tfsal explain`` does
(:func:`tfsal.outputs.files.explain_chunk`, atomic writes). Every input becomes one row; the
launcher merges the rows with the table of earlier runs into ``results.csv`` and lists the failed
inputs in ``dead_letters.csv``, both written atomically and only when their content changes.

Workers open the inputs and write the outputs by local path: on a cluster both must be on a file
system every worker mounts.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions

from tfsal.batch.results import (
    DEAD_LETTER_FIELDS,
    DEAD_LETTERS,
    RESULT_FIELDS,
    RESULTS,
    BatchReport,
    dead_letter_row,
    merge_table,
    read_table,
    result_row,
    write_csv,
)
from tfsal.batch.runner import is_direct
from tfsal.errors import ImageReadError, TfsalError
from tfsal.evaluation.metrics import count_components
from tfsal.explain.registry import DEFAULT_STEPS

# TensorFlow (through tfsal.explain) is imported where it is needed, so that a worker unpickling
# the DoFns does not load it before ExplainImages.setup() does, quietly.

log = logging.getLogger(__name__)

__all__ = ["BatchSettings", "ExplainImages", "ReadImage", "batch_provenance", "build_pipeline", "check_settings",
           "make_explainer", "run_batch"]

DEAD_LETTER = "dead_letter"
"""The tag of ReadImage's output for files that cannot be read."""


# -- settings and explainers, on the workers -------------------------------------------------------

@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs to explain and write (pickled with the DoFn: paths and numbers only).

    ``steps`` are the optimisation steps, recorded in each JSON; with a server, None uses the
    export's own number (its ``serving_default`` signature; given steps use ``explain_steps``).
    ``target`` None is the explainer's default (1 for one sigmoid output; 1 with a server).
    """

    out: str
    batch_size: int = 8
    steps: int | None = DEFAULT_STEPS
    seed: int = 0
    target: int | None = None
    classifier: str | None = None
    inpainter: str | None = None
    server: str | None = None
    model_name: str = "tfsal"
    dicom_out: bool = False  # for DICOM inputs, a Segmentation and a Secondary Capture too
    dicom_send: tuple | None = None  # a tfsal.outputs.dicom_send.DicomAddress to C-STORE them to
    redact: bool = False  # inputs named by a hash of their path and their file name (shown_path)
    overlay: str = "outline"  # the overlay's style (tfsal.outputs.drawing.STYLES)
    method: str = "counterfactual"  # a name of tfsal.explain.registry (with a server: counterfactual or amortised)
    percentile: float = 90.0  # the baselines' cut
    preset: str = "default"
    logits: bool = False
    mask_network: str | None = None  # the amortised method's (None: the shipped one)


def make_explainer(settings: BatchSettings):
    """The :class:`~tfsal.explain.interface.ImageExplainer` of ``settings``: its method over its
    models (:func:`tfsal.explain.registry.build_from_files`, as ``tfsal explain`` builds it), or a
    :class:`~tfsal.serving.client.ServerExplainer` with ``settings.server``.

    Raises:
        TfsalError: a model file cannot be loaded, or the server cannot be reached.
        ValueError: the explainer rejects the settings.
    """
    if settings.server:
        from tfsal.serving.client import ServerExplainer

        fast = settings.method == "amortised"  # the export's explain_fast signature, one pass
        return ServerExplainer(settings.server, settings.model_name, None if fast else settings.steps,
                               batch_size=settings.batch_size, fast=fast)
    from tfsal.explain import registry

    return registry.build_from_files(settings.method, settings.classifier, settings.inpainter,
                                     batch_size=settings.batch_size, logits=settings.logits,
                                     steps=settings.steps or DEFAULT_STEPS, seed=settings.seed,
                                     percentile=settings.percentile, preset=settings.preset,
                                     mask_network=settings.mask_network)


def check_settings(settings: BatchSettings) -> dict:
    """Load the models (or reach the server) once on the launcher, so bad settings fail before the
    pipeline; return the run's :func:`~tfsal.outputs.provenance.run_provenance` (what the workers'
    results will record, and what a rerun resumes by).

    Raises:
        TfsalError, ValueError: as :func:`make_explainer`.
    """
    explainer = make_explainer(settings)
    try:
        return batch_provenance(explainer, settings)
    finally:
        _close(explainer)


def batch_provenance(explainer, settings: BatchSettings) -> dict:
    """:func:`~tfsal.outputs.provenance.run_provenance` of a run with ``settings``: the same on
    the launcher (what a rerun resumes by) and on every worker (what each JSON records)."""
    from tfsal.outputs.provenance import run_provenance

    return run_provenance(explainer, settings.overlay, settings.target,
                          settings.dicom_out or settings.dicom_send is not None)


def _close(explainer) -> None:
    """Close a server explainer's channel (local explainers hold nothing to close)."""
    if hasattr(explainer, "close"):
        explainer.close()


class ReadImage(beam.DoFn):
    """``(path, stem) -> (path, stem, image, sha256, read_seconds)``; an unreadable file goes to the ``dead_letter``
    output as ``(shown, reason)`` (``shown``: the path as :func:`~tfsal.outputs.files.shown_path`
    shows it with ``redact``) and the pipeline goes on."""

    def __init__(self, redact: bool = False):
        self.redact = redact

    def process(self, element: tuple[str, str]) -> Iterator:
        from tfsal.outputs.files import FileResult, read_input, shown_path

        path, stem = element
        result = FileResult(path, stem)
        try:
            image = read_input(result)
        except ImageReadError as exc:
            reason = exc.reason
        except TfsalError as exc:  # its message names the file
            reason = str(exc).removeprefix(f"{path}: ")
        except Exception as exc:  # whatever a decoder raises, one file must not stop the pipeline
            reason = f"cannot read: {type(exc).__name__}"
        else:
            yield path, stem, image, result.sha256, result.read_seconds
            return
        shown = shown_path(path, self.redact)
        reason = reason.replace(path, shown)
        log.info("dead letter: %s: %s", shown, reason)
        yield beam.pvalue.TaggedOutput(DEAD_LETTER, (shown, reason))


class ExplainImages(beam.DoFn):
    """A batch of :class:`ReadImage`'s tuples -> their outputs in ``settings.out`` and one result row
    each (see :data:`RESULT_FIELDS`). The models (or the server connection) are set up once per
    worker."""

    def __init__(self, settings: BatchSettings):
        self.settings = settings
        self._explainer = None
        self._provenance = None

    def setup(self) -> None:
        if not logging.getLogger().isEnabledFor(logging.DEBUG):  # at debug level TensorFlow's lines show
            from tfsal.util.quiet import import_tensorflow_quietly

            import_tensorflow_quietly()
        self._explainer = make_explainer(self.settings)
        self._provenance = batch_provenance(self._explainer, self.settings)

    def process(self, batch: list) -> Iterator[dict]:
        from tfsal.outputs.files import FileResult, explain_chunk, fit_image

        size = self._explainer.input_size
        loaded = []
        for path, stem, image, sha256, seconds in batch:
            result = FileResult.of(path, stem, self.settings.redact)
            result.sha256, result.read_seconds = sha256, seconds
            loaded.append((result, image, *fit_image(image, size)))
        try:
            explanations = explain_chunk(loaded, Path(self.settings.out), self._explainer, self.settings.target,
                                         dicom=self.settings.dicom_out, dicom_send=self.settings.dicom_send,
                                         style=self.settings.overlay, provenance=self._provenance)
        except Exception as exc:  # e.g. a TensorFlow error on one batch: its inputs fail, the others go on
            log.warning("cannot explain a batch of %d (%s): %s", len(loaded), type(exc).__name__,
                        ", ".join(result.label for result, *_ in loaded))
            for result, *_ in loaded:
                result.fail(f"{result.path}: cannot explain: {type(exc).__name__}")
            explanations = [None] * len(loaded)
        for (result, *_), explanation in zip(loaded, explanations, strict=True):
            if result.ok:
                yield result_row(result.label, "ok", result.record, count_components(explanation.mask))
            else:
                yield result_row(result.label, "error", error=result.error.removeprefix(f"{result.label}: "))

    def teardown(self) -> None:
        _close(self._explainer)


def build_pipeline(pipeline: beam.Pipeline, pending: list[tuple[str, str]], settings: BatchSettings,
                   rows_prefix: str) -> None:
    """Add the transforms: ``pending`` ``(path, stem)`` pairs in, result rows out as JSON lines
    to files starting with ``rows_prefix``."""
    read = (pipeline
            | "Inputs" >> beam.Create(pending)
            | "Read" >> beam.ParDo(ReadImage(settings.redact)).with_outputs(DEAD_LETTER, main="images"))
    explained = (read.images
                 | "Batch" >> beam.BatchElements(min_batch_size=settings.batch_size,
                                                 max_batch_size=settings.batch_size)
                 | "Explain" >> beam.ParDo(ExplainImages(settings)))
    dead = read[DEAD_LETTER] | "DeadLetterRows" >> beam.MapTuple(dead_letter_row)
    (explained, dead) | "Rows" >> beam.Flatten() | "Json" >> beam.Map(json.dumps, sort_keys=True) \
        | "Write" >> beam.io.WriteToText(rows_prefix, file_name_suffix=".jsonl")


# -- the run ------------------------------------------------------------------------------------------

def run_batch(inputs: list[str], settings: BatchSettings, pipeline: beam.Pipeline,
              provenance: dict | None = None) -> BatchReport:
    """Explain the inputs not yet done on ``pipeline`` (a new one, run only when some input is
    pending) and update the tables in ``settings.out``.

    An input is done when its ``<stem>.json`` names it, holds its file's current SHA-256 and was
    made with the same method, settings and models (:func:`~tfsal.outputs.provenance.same_run`
    with ``provenance``, the run's; None: :func:`check_settings` says it); otherwise it is
    explained again and its outputs replaced.
    """
    from tfsal.outputs.files import remove_outputs, shown_path, unique_stems
    from tfsal.outputs.provenance import read_record, same_run

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    provenance = provenance or check_settings(settings)
    stems = unique_stems(inputs, out, settings.redact)  # a <stem>.json there names this input, or there is none
    pending, done = [], []
    for path, stem in zip(inputs, stems, strict=True):
        record = read_record(out / f"{stem}.json")
        if record is not None and same_run(record, provenance, path):
            done.append((path, stem))
        else:
            if record is not None:  # this input's outputs of another content or other settings
                remove_outputs(out, stem, record)
            pending.append((path, stem))
    log.info("%d inputs: %d to explain, %d already done", len(inputs), len(pending), len(done))
    rows = _run_pipeline(pipeline, pending, settings) if pending else []
    shown = {path: shown_path(path, settings.redact) for path in inputs}  # the tables' names of the inputs
    table = merge_table([shown[p] for p in inputs], read_table(out / RESULTS),
                        [(shown[p], stem) for p, stem in done], rows, out)
    write_csv(out / RESULTS, RESULT_FIELDS, table)
    write_csv(out / DEAD_LETTERS, DEAD_LETTER_FIELDS,
              [{"input": row["input"], "reason": row["error"]} for row in table if row["status"] != "ok"])
    order = {shown[path]: i for i, (path, _) in enumerate(pending)}
    return BatchReport(sorted(rows, key=lambda row: order[row["input"]]), len(done), table)


def _run_pipeline(pipeline: beam.Pipeline, pending: list[tuple[str, str]], settings: BatchSettings) -> list[dict]:
    direct = is_direct(pipeline.options.view_as(StandardOptions).runner)
    if direct:
        folder = tempfile.mkdtemp(prefix="tfsal-batch-")
    else:  # the workers write the rows: somewhere they and the launcher share
        temp = pipeline.options.view_as(GoogleCloudOptions).temp_location
        folder = FileSystems.join(temp or settings.out, f".tfsal-batch-{uuid.uuid4().hex}")
    try:
        prefix = FileSystems.join(folder, "rows")
        build_pipeline(pipeline, pending, settings, prefix)
        pipeline.run().wait_until_finish()
        return _read_rows(prefix)
    finally:
        if direct:
            shutil.rmtree(folder, ignore_errors=True)
        elif FileSystems.exists(folder):
            FileSystems.delete([folder])


def _read_rows(prefix: str) -> list[dict]:
    rows = []
    for match in FileSystems.match([f"{prefix}*.jsonl"])[0].metadata_list:
        with FileSystems.open(match.path) as file:
            rows.extend(json.loads(line) for line in file.read().decode("utf-8").splitlines() if line.strip())
    return rows


