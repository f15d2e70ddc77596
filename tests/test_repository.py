"""The checkout stays clean: what the README's quick start writes is ignored by git."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_outputs() -> list:
    """Every --out of the commands in the README's quick-start block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("**Quick start**", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return re.findall(r"--out\s+(\S+)", block)


@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None, reason="not a git checkout")
def test_the_quick_starts_outputs_are_ignored():
    outputs = quick_start_outputs()
    assert {"demo-bench", "demo-eval", "demo-sheet.png"} <= set(outputs)
    for output in outputs + ["demo-data"]:
        path = output if Path(output).suffix else output + "/"  # a folder (as git sees it once it exists)
        result = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
        assert result.returncode == 0, f"{output} (written by the quick start) is not in .gitignore"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_fails_when_chromium_cannot_be_installed(tmp_path):
    """.ci/run on a machine without Chromium where apt-get fails: it stops with a message instead of
    running the tests (in which the browser test would skip). pip, python, ruff and mkdocs are stubs."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    _stub(bin_dir, "apt-get", "exit 100")
    ran = tmp_path / "ran"
    for tool in ("pip", "python", "ruff", "mkdocs"):
        _stub(bin_dir, tool, f'echo "{tool} $CI" >> "{ran}"')
    result = subprocess.run(
        [shutil.which("bash"), str(tmp_path / ".ci" / "run")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "could not install chromium" in result.stderr
    assert not ran.exists()  # nothing ran after the failed install
    # With Chromium present the tests run, with CI set so that no browser test can skip.
    _stub(bin_dir, "chromium", "exit 0")
    _stub(bin_dir, "chromedriver", "exit 0")
    result = subprocess.run(
        [shutil.which("bash"), str(tmp_path / ".ci" / "run")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "python true" in ran.read_text()


def test_every_test_runs_under_a_timeout(request):
    """pytest-timeout is configured in pyproject.toml, so a hung worker or server fails its test."""
    timeout = float(request.config.getini("timeout") or 0)
    assert 60 <= timeout <= 600
    assert request.config.pluginmanager.hasplugin("timeout")
