"""``tfsal explain-batch``: the counterfactual explanation of many image files as an Apache Beam pipeline.

The launcher lists the inputs (a manifest CSV, a folder or a glob), gives them the output stems
``tfsal explain`` gives the same list (:func:`tfsal.explain.files.unique_stems`) and leaves out
those whose ``<stem>.json`` is already in the output folder, so a rerun resumes where the last
one stopped. The pipeline::

    Create(path, stem) -> ReadImage -> BatchElements -> ExplainImages -> rows (JSON lines)
                              \\-> dead letters (unreadable files) ---------/

``ExplainImages`` loads the models once per worker (``DoFn.setup``), or talks to a TF Serving
endpoint, and writes each image's outputs exactly as ``tfsal explain`` does
(:func:`tfsal.explain.files.explain_chunk`, atomic writes). Every input becomes one row; the
launcher merges the rows with the table of earlier runs into ``results.csv`` and lists the failed
inputs in ``dead_letters.csv``, both written atomically and only when their content changes.

Workers open the inputs and write the outputs by local path: on a cluster both must be on a file
system every worker mounts.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from tfsal import atomic
from tfsal.data.manifest import resolve_path
from tfsal.errors import ImageReadError, ManifestError
from tfsal.metrics import count_components

# TensorFlow (through tfsal.explain) is imported where it is needed, so that a worker unpickling
# the DoFns does not load it before ExplainImages.setup() does, quietly.

log = logging.getLogger(__name__)

__all__ = ["RESULT_FIELDS", "BatchReport", "BatchSettings", "ExplainImages", "ReadImage",
           "build_pipeline", "check_settings", "is_direct", "list_inputs",
           "make_explainer", "new_pipeline", "pipeline_options", "run_batch", "unknown_beam_args"]

RESULTS, DEAD_LETTERS = "results.csv", "dead_letters.csv"
RESULT_FIELDS = ("input", "status", "score_original", "score_counterfactual", "area_fraction", "components",
                 "seconds", "error")
DEAD_LETTER_FIELDS = ("input", "reason")
DEAD_LETTER = "dead_letter"
DIRECT_RUNNERS = {"direct", "directrunner"}
DEFAULT_STEPS = 100


# -- the inputs, on the launcher ------------------------------------------------------------------

def list_inputs(specs: Iterable[str]) -> list[str]:
    """The image files named by each spec, in order: a manifest CSV (its ``image`` or ``path``
    column, relative paths against the CSV's folder), a folder (its image files, as ``tfsal
    explain`` expands one), an image file, or a glob (``**`` recursive; matched folders expanded,
    files kept when they have an image suffix).

    Raises:
        ManifestError: a manifest cannot be read or has neither column.
    """
    from tfsal.explain.files import IMAGE_SUFFIXES, expand_inputs

    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_file() and path.suffix.lower() == ".csv":
            paths.extend(_manifest_paths(path))
        elif path.exists():
            paths.extend(expand_inputs([path]))
        else:
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            paths.extend(expand_inputs([p for p in matches if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES]))
    return [str(p) for p in paths]


def _manifest_paths(path: Path) -> list[Path]:
    try:
        reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
        columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from None
    column = next((c for c in ("image", "path") if c in columns), None)
    if column is None:
        raise ManifestError(f"{path}: a manifest needs an 'image' or 'path' column (it has {', '.join(columns)})")
    return [p for row in reader if (p := resolve_path(path.parent, row.get(column) or ""))]


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
    steps: int | None = 100
    seed: int = 0
    target: int | None = None
    classifier: str | None = None
    inpainter: str | None = None
    server: str | None = None
    model_name: str = "tfsal"
    dicom_out: bool = False  # for DICOM inputs, a Segmentation and a Secondary Capture too
    dicom_send: tuple | None = None  # a tfsal.dicom_results.DicomAddress to C-STORE them to


def make_explainer(settings: BatchSettings):
    """``(explainer, working size)``: the counterfactual explainer over the models of ``settings``
    (the shipped ones by default), or a :class:`~tfsal.serving_client.ServerExplainer` with
    ``settings.server``.

    Raises:
        TfsalError: a model file cannot be loaded, or the server cannot be reached.
        ValueError: the explainer rejects the settings.
    """
    if settings.server:
        from tfsal.serving_client import ServerExplainer

        explainer = ServerExplainer(settings.server, settings.model_name, settings.steps)
        return explainer, explainer.input_size
    from tfsal.explain import CounterfactualExplainer
    from tfsal.models.classifier import load_classifier, load_default_classifier

    classifier = load_classifier(settings.classifier) if settings.classifier else load_default_classifier()
    # the explainer loads the inpainter file given, or the shipped one for None
    explainer = CounterfactualExplainer(classifier, inpainter=settings.inpainter, steps=settings.steps or DEFAULT_STEPS,
                                        seed=settings.seed, batch_size=settings.batch_size)
    return explainer, explainer.classifier.input_size


def check_settings(settings: BatchSettings) -> None:
    """Load the models (or reach the server) once on the launcher, so bad settings fail before the pipeline.

    Raises:
        TfsalError, ValueError: as :func:`make_explainer`.
    """
    _close(make_explainer(settings)[0])


def _close(explainer) -> None:
    """Close a server explainer's channel (local explainers hold nothing to close)."""
    if hasattr(explainer, "close"):
        explainer.close()


def _row(path: str, status: str, record: dict | None = None, count: int | None = None, error: str = "") -> dict:
    record = record or {}
    return {"input": path, "status": status, "score_original": record.get("score_original"),
            "score_counterfactual": record.get("score_counterfactual"),
            "area_fraction": record.get("area_fraction"), "components": count, "seconds": record.get("seconds"),
            "error": error}


def _dead_letter_row(path: str, reason: str) -> dict:
    return _row(path, "error", error=reason)


class ReadImage(beam.DoFn):
    """``(path, stem) -> (path, stem, image)``; an unreadable file goes to the ``dead_letter``
    output as ``(path, reason)`` and the pipeline goes on."""

    def process(self, element: tuple[str, str]) -> Iterator:
        from tfsal.data.image_io import read_image

        path, stem = element
        try:
            image, _ = read_image(path)
        except ImageReadError as exc:
            reason = exc.reason
        except Exception as exc:  # whatever a decoder raises, one file must not stop the pipeline
            reason = f"cannot read: {type(exc).__name__}"
        else:
            yield path, stem, image
            return
        log.info("dead letter: %s: %s", path, reason)
        yield beam.pvalue.TaggedOutput(DEAD_LETTER, (path, reason))


class ExplainImages(beam.DoFn):
    """A batch of ``(path, stem, image)`` -> their outputs in ``settings.out`` and one result row
    each (see :data:`RESULT_FIELDS`). The models (or the server connection) are set up once per
    worker."""

    def __init__(self, settings: BatchSettings):
        self.settings = settings
        self._explainer = self._size = None

    def setup(self) -> None:
        if not logging.getLogger().isEnabledFor(logging.DEBUG):  # at debug level TensorFlow's lines show
            from tfsal.data.image_io import import_tensorflow_quietly

            import_tensorflow_quietly()
        self._explainer, self._size = make_explainer(self.settings)

    def process(self, batch: list) -> Iterator[dict]:
        from tfsal.explain.files import FileResult, explain_chunk, fit_image

        loaded = [(FileResult(path, stem), image, *fit_image(image, self._size)) for path, stem, image in batch]
        try:
            explanations = explain_chunk(loaded, Path(self.settings.out), self._explainer, self.settings.steps,
                                         self.settings.target, dicom=self.settings.dicom_out,
                                         dicom_send=self.settings.dicom_send)
        except Exception as exc:  # e.g. a TensorFlow error on one batch: its inputs fail, the others go on
            log.warning("cannot explain a batch of %d (%s): %s", len(loaded), type(exc).__name__,
                        ", ".join(result.path for result, *_ in loaded))
            for result, *_ in loaded:
                result.error = f"{result.path}: cannot explain: {type(exc).__name__}"
            explanations = [None] * len(loaded)
        for (result, *_), explanation in zip(loaded, explanations, strict=True):
            if result.ok:
                yield _row(result.path, "ok", result.record, count_components(explanation.mask))
            else:
                yield _row(result.path, "error", error=result.error.removeprefix(f"{result.path}: "))

    def teardown(self) -> None:
        _close(self._explainer)


def build_pipeline(pipeline: beam.Pipeline, pending: list[tuple[str, str]], settings: BatchSettings,
                   rows_prefix: str) -> None:
    """Add the transforms: ``pending`` ``(path, stem)`` pairs in, result rows out as JSON lines
    to files starting with ``rows_prefix``."""
    read = (pipeline
            | "Inputs" >> beam.Create(pending)
            | "Read" >> beam.ParDo(ReadImage()).with_outputs(DEAD_LETTER, main="images"))
    explained = (read.images
                 | "Batch" >> beam.BatchElements(min_batch_size=settings.batch_size,
                                                 max_batch_size=settings.batch_size)
                 | "Explain" >> beam.ParDo(ExplainImages(settings)))
    dead = read[DEAD_LETTER] | "DeadLetterRows" >> beam.MapTuple(_dead_letter_row)
    (explained, dead) | "Rows" >> beam.Flatten() | "Json" >> beam.Map(json.dumps, sort_keys=True) \
        | "Write" >> beam.io.WriteToText(rows_prefix, file_name_suffix=".jsonl")


# -- pipeline options --------------------------------------------------------------------------------

def is_direct(runner: str | None) -> bool:
    """Whether ``runner`` names Beam's DirectRunner."""
    return (runner or "DirectRunner").lower() in DIRECT_RUNNERS


def pipeline_options(runner: str, beam_args: list[str], direct_num_workers: int = 2,
                     direct_running_mode: str = "multi_processing") -> PipelineOptions:
    """The options for ``runner`` with the pass-through ``beam_args``; the direct-runner settings
    apply to the DirectRunner only."""
    flags = [f"--runner={runner}", *beam_args]
    if is_direct(runner):
        flags += [f"--direct_num_workers={direct_num_workers}", f"--direct_running_mode={direct_running_mode}"]
        # worker processes log at the launcher's level; their start-up notices stay quiet
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        given = {arg.split("=")[0] for arg in beam_args}
        if "--default_sdk_harness_log_level" not in given:
            flags.append(f"--default_sdk_harness_log_level={level}")
        if "--sdk_harness_log_level_overrides" not in given and level != "DEBUG":
            flags.append('--sdk_harness_log_level_overrides={"__main__": "ERROR"}')
    return PipelineOptions(flags)


class _OptionsParser(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(message)


def unknown_beam_args(beam_args: list[str]) -> list[str]:
    """The arguments no Beam pipeline option knows.

    Raises:
        ValueError: a known option has a bad value.
    """
    try:  # Beam's own parser, as PipelineOptions builds it (private names: checked only where they exist)
        from apache_beam.options.pipeline_options import _BeamArgumentParser

        parser = type("Parser", (_OptionsParser, _BeamArgumentParser), {})(allow_abbrev=False)
        for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
            cls._add_argparse_args(parser)
    except (ImportError, AttributeError):
        return []
    return parser.parse_known_args(beam_args)[1]


def new_pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A pipeline on the runner the options name (for the DirectRunner, see :func:`_runner`).

    Raises:
        ValueError: Beam does not know the runner, or the options fail the runner's validation
            (e.g. Dataflow without ``--project``).
        ImportError: the runner's extra is missing (``apache-beam[gcp]`` for Dataflow).
    """
    return beam.Pipeline(runner=_runner(options), options=options)


def _runner(options: PipelineOptions):
    """For the DirectRunner its batch engine, the FnApiRunner, given the options as the DirectRunner
    gives them (Beam's DirectRunner would first try to download and start Prism, which ignores
    ``direct_num_workers``); None (the runner the options name) otherwise."""
    if not is_direct(options.view_as(StandardOptions).runner):
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options(drop_default=True))
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


# -- the run and the results table -------------------------------------------------------------------

@dataclass
class BatchReport:
    """What one run did: ``rows`` of this run's inputs, how many were ``skipped`` as done, and the
    whole merged ``table`` (what ``results.csv`` holds)."""

    rows: list[dict]
    skipped: int
    table: list[dict]

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.rows if row["status"] != "ok"]


def run_batch(inputs: list[str], settings: BatchSettings, pipeline: beam.Pipeline) -> BatchReport:
    """Explain the inputs not yet done on ``pipeline`` (a new one, run only when some input is
    pending) and update the tables in ``settings.out``."""
    from tfsal.explain.files import unique_stems

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    stems = unique_stems(inputs)
    existing = set(os.listdir(out))
    pending, done = [], []
    for path, stem in zip(inputs, stems, strict=True):
        (done if f"{stem}.json" in existing else pending).append((path, stem))
    log.info("%d inputs: %d to explain, %d already done", len(inputs), len(pending), len(done))
    rows = _run_pipeline(pipeline, pending, settings) if pending else []
    table = _merge(inputs, _read_table(out / RESULTS), done, rows, out)
    _write_csv(out / RESULTS, RESULT_FIELDS, table)
    _write_csv(out / DEAD_LETTERS, DEAD_LETTER_FIELDS,
               [{"input": row["input"], "reason": row["error"]} for row in table if row["status"] != "ok"])
    order = {path: i for i, (path, _) in enumerate(pending)}
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


def _read_table(path: Path) -> dict[str, dict]:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            return {row["input"]: row for row in csv.DictReader(file) if row.get("input")}
    except (OSError, csv.Error, KeyError):
        return {}


def _row_from_outputs(out: Path, path: str, stem: str) -> dict:
    """The row of an input explained earlier whose row is missing (e.g. by ``tfsal explain``)."""
    import cv2

    try:
        record = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError) as exc:
        return _row(path, "error", error=f"cannot read its earlier outputs: {exc}")
    return _row(path, "ok", record, None if mask is None else count_components(mask > 0))


def _merge(inputs: list[str], earlier: dict[str, dict], done: list[tuple[str, str]], rows: list[dict],
           out: Path) -> list[dict]:
    """One row per input in their order: this run's, else the earlier one of an input done before
    (rebuilt from its outputs when missing or not ok); then the earlier rows of inputs not listed."""
    table = {row["input"]: row for row in rows}
    for path, stem in done:
        row = earlier.get(path)
        table[path] = row if row and row.get("status") == "ok" else _row_from_outputs(out, path, stem)
    return [table[path] for path in dict.fromkeys(inputs) if path in table] + [
        row for path, row in earlier.items() if path not in table]


def _write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    """Write the table atomically, unless the file already holds exactly this."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: "" if row.get(k) is None else row[k] for k in fields} for row in rows)
    text = buffer.getvalue()
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic.write_text(path, text)
