"""Parameter types and helpers shared by the commands."""

from __future__ import annotations

import re
from pathlib import Path

import click


class SizeType(click.ParamType):
    """``HxW`` (height x width), e.g. ``256x192``, as a tuple of two positive ints."""

    name = "HxW"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
        if not match or min(int(match[1]), int(match[2])) < 16:
            self.fail(f"expected HxW with both sides at least 16, e.g. 256x192; got {value!r}", param, ctx)
        return int(match[1]), int(match[2])


SIZE = SizeType()


class RangeType(click.ParamType):
    """``LOW,HIGH``, two positive numbers with ``LOW <= HIGH``, e.g. ``0.5,2``, as a tuple of floats."""

    name = "LOW,HIGH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from tfsal.util.checks import check_range

        try:
            return check_range(self.name, str(value).split(","))
        except ValueError:
            self.fail(f"expected LOW,HIGH with 0 < LOW <= HIGH, e.g. 0.5,2; got {value!r}", param, ctx)


RANGE = RangeType()


class MethodChoice(click.Choice):
    """A choice among names read from :mod:`tfsal.explain.registry` when asked (so a method
    registered after this module was imported is offered too). Loads no TensorFlow.

    Args:
        names: a function returning the current names (e.g. ``registry.names``).
    """

    def __init__(self, names):
        self._names = names
        super().__init__(())

    @property
    def choices(self):
        return tuple(self._names())

    @choices.setter
    def choices(self, value):  # click.Choice.__init__ assigns it; the names are always read live
        pass


def load_models(classifier_path, inpainter_path):
    """The classifier and inpainter files given, else the shipped ones.

    Raises:
        TfsalError: a file cannot be loaded as a Keras model.
    """
    from tfsal.models.classifier import load_classifier, load_default_classifier
    from tfsal.models.inpainter import load_default_inpainter, load_inpainter

    classifier = load_classifier(classifier_path) if classifier_path else load_default_classifier()
    return classifier, load_inpainter(inpainter_path) if inpainter_path else load_default_inpainter()


class DicomAddressType(click.ParamType):
    """A DICOM node, ``HOST:PORT`` or ``AET@HOST:PORT``, as a :class:`tfsal.outputs.dicom_send.DicomAddress`."""

    name = "[AET@]HOST:PORT"

    def convert(self, value, param, ctx):
        from tfsal.outputs.dicom_send import DicomAddress, parse_dicom_address

        if isinstance(value, DicomAddress):
            return value
        try:
            return parse_dicom_address(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def dicom_options(command):
    """``--dicom-out`` and ``--dicom-send``, shared by ``tfsal explain`` and ``tfsal explain-batch``."""
    command = click.option(
        "--dicom-send", type=DicomAddressType(), default=None,
        help="C-STORE the DICOM results to this node (AE title default ANY-SCP, ours TFSAL); implies "
             "--dicom-out.")(command)
    return click.option(
        "--dicom-out", is_flag=True,
        help="For DICOM inputs, also write <stem>_seg.dcm (a DICOM Segmentation of the result mask) and "
             "<stem>_overlay.dcm (a Secondary Capture of the overlay), in the source's study as new series "
             "(needs tfsal[dicom]).")(command)


redact_option = click.option(
    "--redact-paths", "redact", is_flag=True,
    help="Name inputs in the JSON, the tables and the messages by a hash of their path and their file name "
         "only (folder names can hold patient identifiers).")
"""``--redact-paths``, shared by ``tfsal explain``, ``tfsal explain-batch`` and ``tfsal predict``."""


def check_dicom_extra(dicom_out: bool, dicom_send) -> None:
    """One line naming the missing extra, before any work, when DICOM output is asked for."""
    if dicom_out or dicom_send is not None:
        from tfsal.errors import TfsalError
        from tfsal.outputs.dicom_results import require_dicom_extra

        try:
            require_dicom_extra()
        except TfsalError as exc:
            raise click.ClickException(str(exc)) from None


overlay_option = click.option(
    "--overlay", "style", type=click.Choice(["outline", "heat"]), default="outline", show_default=True,
    help="The overlay picture: the region's outline with the scores and a colour bar of the score, or the map "
         "as a heat map under it with the map's colour bar (tfsal.outputs.drawing.STYLES).")
"""``--overlay``, shared by ``tfsal explain``, ``tfsal explain-batch`` and ``tfsal predict``."""


def method_options(command):
    """``--method``, ``--percentile``, ``--preset``, ``--mask-network`` and ``--logits``, shared by
    ``tfsal explain`` and ``tfsal explain-batch`` (each method takes those it names in
    :mod:`tfsal.explain.registry`)."""
    from tfsal.explain import registry

    for option in reversed((
        click.option("--method", type=MethodChoice(registry.names), default="counterfactual", show_default=True,
                     help="The explanation method (tfsal.explain.registry)."),
        click.option("--percentile", type=click.FloatRange(0, 100), default=90.0, show_default=True,
                     help="Baselines: the result mask keeps the map above this percentile inside the breast."),
        click.option("--preset", type=click.Choice(["default", "paper"]), default="default", show_default=True,
                     help="Counterfactual method: tfsal's tuned settings, or the paper's (lambdas 1, 0.1, 0.1, psi "
                          "unbounded, 8 px cells at 576 rows); see docs/explain.md."),
        click.option("--mask-network", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Amortised method: the mask network trained for this classifier and inpainter (tfsal "
                          "train explainer) [default: the shipped one, for the shipped models]."),
        click.option("--logits", is_flag=True, help="The classifier outputs logits, not probabilities."),
    )):
        command = option(command)
    return command


def reject_options_not_taken(method: str) -> None:
    """Refuse method options (:data:`tfsal.explain.registry.OPTIONS`) given on the command line that
    ``method`` does not take: ``--steps 300 --method cam`` would otherwise change nothing.

    Raises:
        click.UsageError: naming the options and what the method takes.
    """
    from click.core import ParameterSource

    from tfsal.explain import registry

    ctx = click.get_current_context()
    takes = registry.get(method).options
    given = [name for name in registry.OPTIONS if name not in takes
             and ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        taken = ", ".join("--" + name.replace("_", "-") for name in takes)
        raise click.UsageError(f"--method {method} does not use {flags} (of the method options it takes {taken})")


input_option = click.option(
    "--input", "specs", multiple=True, metavar="MANIFEST|FOLDER|GLOB",
    help="Inputs as tfsal explain-batch takes them: a manifest CSV (column image or path), a folder, an image or "
         "a glob; repeatable, and the same as giving them as arguments.")
"""``--input``, shared by ``tfsal explain`` and ``tfsal predict`` (``explain-batch`` has its own, required)."""


def command_inputs(specs) -> list[str]:
    """The files that the arguments and ``--input`` of ``tfsal explain`` or ``predict`` name
    (:func:`tfsal.outputs.inputs.list_inputs`; a missing file is kept, to be reported with the others).

    Raises:
        click.BadParameter: a manifest that cannot be read.
    """
    from tfsal.errors import ManifestError
    from tfsal.outputs.inputs import list_inputs

    try:
        return list_inputs([str(spec) for spec in specs], keep_missing=True)
    except ManifestError as exc:
        raise click.BadParameter(str(exc), param_hint="IMAGES / --input") from None
