"""The top-level ``clevr-remv`` group: command suggestions and how warnings and errors print."""

import warnings

import click
import pytest
from click.testing import CliRunner

from clevr_remv import cli
from clevr_remv.errors import ClevrRemvError


@pytest.mark.parametrize(
    "typed, suggestion",
    [
        ("valdate", "Did you mean 'validate'"),
        ("benchmrk", "Did you mean 'benchmark'"),
        ("retreival", "Did you mean 'retrieval'"),
    ],
)
def test_a_mistyped_command_gets_a_suggestion(typed, suggestion):
    result = CliRunner().invoke(cli.main, [typed, "--data", "x"])
    assert result.exit_code == 2
    assert f"No such command '{typed}'. {suggestion}" in result.output


def test_an_unknown_command_lists_no_suggestion_but_points_at_help():
    result = CliRunner().invoke(cli.main, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'." in result.output and "Did you mean" not in result.output
    assert "clevr-remv --help" in result.output


@click.command()
def _warns_then_fails():
    warnings.warn("few validation images", stacklevel=1)
    raise ClevrRemvError("--data x: broken; fix it")


def test_warnings_and_errors_print_as_one_line_each(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "demo", f"{__name__}:_warns_then_fails")
    monkeypatch.setitem(cli.SHORT_HELP, "demo", "a test command")
    result = CliRunner().invoke(cli.main, ["demo"])
    assert result.exit_code == 2
    assert result.output.splitlines() == ["Warning: few validation images", "Error: --data x: broken; fix it"]
