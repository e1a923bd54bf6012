"""Entry point of the ``tfsal`` command.

Subcommands live in one module each and are imported only when invoked, so ``tfsal --help``
does not pay for TensorFlow (click's "lazily loading subcommands" pattern). Library errors
(:class:`tfsal.errors.TfsalError`) become one line on stderr and exit code 1; usage errors
exit with 2.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys

import click

from tfsal import __version__

# Commands that never load TensorFlow (all others do: quietly, once their options are parsed).
COMMANDS_WITHOUT_TENSORFLOW = {"data", "report"}

# command name -> "module:attribute" of its click command
COMMANDS = {
    "data": "tfsal.cli.cmd_data:data",
    "train": "tfsal.cli.cmd_train:train",
    "evaluate-classifier": "tfsal.cli.cmd_evaluate_classifier:evaluate_classifier",
    "check-inpainter": "tfsal.cli.cmd_check_inpainter:check_inpainter",
    "explain": "tfsal.cli.cmd_explain:explain",
    "explain-batch": "tfsal.cli.cmd_explain_batch:explain_batch",
    "evaluate": "tfsal.cli.cmd_evaluate:evaluate",
    "export": "tfsal.cli.cmd_export:export",
    "serve": "tfsal.cli.cmd_serve:serve",
    "predict": "tfsal.cli.cmd_serve:predict",
    "report": "tfsal.cli.cmd_report:report",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module_name, attribute = self.lazy_commands[name].split(":")
            # An ImportError here is a bug in tfsal: let it surface, not "No such command".
            command = getattr(importlib.import_module(module_name), attribute)
            if name not in COMMANDS_WITHOUT_TENSORFLOW:
                _after_parsing(command)
            return command
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        from tfsal.errors import TfsalError

        try:
            return super().invoke(ctx)
        except TfsalError as exc:  # bad input: one line, exit 1, no traceback
            raise click.ClickException(str(exc)) from None


def _quiet_tensorflow() -> None:
    """Import TensorFlow without its C++ start-up lines, unless -vv asked for them."""
    root = click.get_current_context().find_root()
    if root.params.get("verbose", 0) < 2:
        from tfsal.util.quiet import import_tensorflow_quietly

        import_tensorflow_quietly()


def _after_parsing(command: click.Command) -> None:
    """Load TensorFlow when ``command`` (each subcommand of a group) runs, after its options were
    parsed and checked: a usage error is reported in well under two seconds, not after TensorFlow."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _after_parsing(sub)
        return
    callback = command.callback
    if callback is None or getattr(callback, "_tfsal_quiet", False):
        return

    @functools.wraps(callback)
    def run(*args, **kwargs):
        _quiet_tensorflow()
        return callback(*args, **kwargs)

    run._tfsal_quiet = True
    command.callback = run


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tfsal")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Explain medical image classifiers with counterfactual inpainting."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # TensorFlow is loaded (quietly; -vv shows its start-up lines) when the subcommand runs, after
    # its options have been checked (_after_parsing)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="tfsal")


if __name__ == "__main__":
    main()
