"""The command line: --help on every command, --version, usage and input errors."""

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from tfsal import __version__
from tfsal.cli.main import cli


def _all_commands(group=cli, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*prefix, name))


COMMANDS = list(_all_commands())


def test_commands_of_the_design_exist():
    assert ("data", "synth") in COMMANDS and ("data", "cbis-ddsm") in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_of_every_command(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_does_not_import_tensorflow(tmp_path):
    code = "import sys; from tfsal.cli.main import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
           "print('tensorflow' in sys.modules, 'matplotlib' in sys.modules)"
    # run outside the source tree, so the installed tfsal is imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_usage_error_exits_2():
    result = CliRunner().invoke(cli, ["data", "synth", "--out", "x", "--size", "12"])
    assert result.exit_code == 2
    assert "expected HxW" in result.output


def test_library_error_is_one_line_and_exit_1(tmp_path):
    csv = tmp_path / "mass.csv"
    csv.write_text("patient_id,nothing\n1,2\n")
    result = CliRunner().invoke(cli, ["data", "cbis-ddsm", "--csv", str(csv), "--root", str(tmp_path),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1


def test_python_dash_m_tfsal_is_the_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfsal", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("Usage: tfsal [OPTIONS] COMMAND")


def test_the_python_api_keeps_tensorflows_start_up_lines_off_stderr(tmp_path):
    code = "from tfsal.explain import CounterfactualExplainer\nimport tfsal.models\nprint('loaded')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "loaded"
    assert result.stderr == "", result.stderr  # no CUDA probing, oneDNN or absl lines


@pytest.mark.parametrize("args", [["explain", "--method", "bogus", "x.png"], ["train", "classifier", "--data", "/no"],
                                  ["evaluate", "--bogus"]])
def test_usage_errors_are_reported_before_tensorflow_loads(tmp_path, args):
    code = (f"import sys; from tfsal.cli.main import main\ntry: main({args!r})\nexcept SystemExit as e: code = e.code\n"
            "print(code, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.strip().splitlines()[-1] == "2 False"  # a usage error, found without loading TensorFlow


def test_a_command_that_loads_tensorflow_keeps_its_start_up_lines_off_stderr(tmp_path):
    from tfsal.util.resources import example_images

    result = subprocess.run([sys.executable, "-m", "tfsal", "explain", str(example_images()[0]), "--method", "cam",
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
