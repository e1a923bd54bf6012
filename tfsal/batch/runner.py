"""Beam pipeline options and runners for ``tfsal explain-batch``: the DirectRunner's multi-process
settings, pass-through options checked by Beam's own parser, and the runner a pipeline runs on."""

from __future__ import annotations

import argparse
import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

__all__ = ["DIRECT_RUNNERS", "is_direct", "new_pipeline", "pipeline_options", "unknown_beam_args"]

DIRECT_RUNNERS = {"direct", "directrunner"}
"""Names of Beam's DirectRunner, lower-cased."""


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
