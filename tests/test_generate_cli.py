"""Bad input to `clevr-remv generate` gives a clear error, exit code 2, and writes nothing."""

import json

import pytest
from click.testing import CliRunner

from clevr_remv.cli import main


@pytest.fixture
def invoke(tmp_path):
    def run(*args):
        out = tmp_path / "out"
        result = CliRunner().invoke(main, ["generate", "--out", str(out), "--scenes", "1", *args])
        return result, out

    return run


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scenes", "0"], "--scenes: 0 must be >= 1"),
        (["--grid", "4"], "--grid: 4 must be a positive odd number"),
        (["--width", "0"], "--width: 0 must be > 0"),
        (["--height", "-5"], "--height: -5 must be > 0"),
        (["--width", "8", "--height", "6"], "--width/--height: 8x6 is too small a view: CLEVR's smallest object"),
        (["--samples", "0"], "--samples: 0 must be >= 1"),
        (["--min-objects", "6", "--max-objects", "4"], "--min-objects: 6 is greater than --max-objects 4"),
        (["--baseline", "-1"], "--baseline: -1.0 must be >= 0"),
        (["--workers", "0"], "--workers: 0 must be >= 1"),
        (["--passes", "foo"], "--passes: 'foo' is not a pass; choose from depth"),
        (["--blender", "/no/such/blender"], "--blender /no/such/blender: not an executable"),
        (["--view-timeout", "-1"], "--view-timeout: -1.0 must be > 0"),
        (["--view-timeout", "0"], "--view-timeout: 0.0 must be > 0"),
    ],
)
def test_bad_flags(invoke, args, message):
    result, out = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_unknown_rig_is_rejected_by_click(invoke):
    result, out = invoke("--rig", "fisheye")
    assert result.exit_code == 2 and "fisheye" in result.output and not out.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read the file"),
        ("{not json", "not valid JSON (line 1"),
        (
            json.dumps(
                {
                    "shapes": {"cube": "cube"},
                    "colors": {"red": [300, 0, 0]},
                    "materials": {"rubber": "rubber"},
                    "sizes": {"large": 0.7},
                }
            ),
            "field 'colors/red/0' is invalid: 300 is greater than the maximum of 255",
        ),
        (
            json.dumps(
                {
                    "shapes": {"cube": "cube"},
                    "colors": {"red": [1, 2, 3]},
                    "materials": {"rubber": "rubber"},
                    "sizes": {"large": 0},
                }
            ),
            "field 'sizes/large' is invalid",
        ),
        (
            json.dumps(
                {
                    "shapes": {"cone": "cone"},
                    "colors": {"red": [1, 2, 3]},
                    "materials": {"rubber": "rubber"},
                    "sizes": {"large": 0.7},
                }
            ),
            "field 'shapes/cone' is invalid",
        ),
    ],
)
def test_bad_properties_file(invoke, tmp_path, content, message):
    path = tmp_path / "props.json"
    if content is not None:
        path.write_text(content)
    result, out = invoke("--properties", str(path))
    assert result.exit_code == 2
    assert str(path) in result.output and message in result.output
    assert not out.exists()


def test_every_command_has_help():
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "generate" in top.output
    help_text = runner.invoke(main, ["generate", "--help"])
    assert help_text.exit_code == 0 and "--baseline" in help_text.output and "--rig" in help_text.output


@pytest.mark.parametrize(
    "text, seconds", [("90m", 5400.0), ("24h", 86400.0), ("3600s", 3600.0), ("2d", 172800.0), ("1.5", 5400.0)]
)
def test_stale_after_reaches_generate_in_seconds(invoke, monkeypatch, text, seconds):
    """--stale-after 90m is 5400 s (read as 90 s it would remove other hosts' scenes in progress)."""
    from clevr_remv.generate import cli

    seen = {}

    def fake_generate(out, scenes, config, **options):
        seen.update(options)
        raise SystemExit(0)

    monkeypatch.setattr(cli, "run_generate", fake_generate)
    result, _ = invoke("--stale-after", text)
    assert result.exit_code == 0 and seen["stale_after"] == seconds
