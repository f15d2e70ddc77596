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
