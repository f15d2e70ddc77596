"""The code in the docs runs and the API reference renders: every ```python block of docs/*.md runs
against a small dataset (its placeholders `DIR` and `DATA` are a dataset folder of that name,
`PACKED` its packed form; a comment `<!-- before: clevr-remv ... -->` on the line above a block
names a command to run first), and no docstring of the package holds a Sphinx role, which
mkdocstrings (Google style) prints raw."""

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.packed.pack import pack_dataset
from clevr_remv.dataset.splits import write_splits
from clevr_remv.generate.synthetic import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^(?:<!-- before: clevr-remv (.+?) -->\n)?```python\n(.*?)^```", re.S | re.M)
ROLE = re.compile(r":(?:py:)?(?:meth|class|func|mod|attr|data|exc|obj|ref|const|term):`")
# Runs each snippet in a namespace of its own; a snippet that warns shows a user the wrong way
# (torch's warning about more DataLoader workers than this machine's cores aside).
RUN = """import json, sys, warnings
for where, code in json.load(sys.stdin):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", "This DataLoader will create")
        exec(compile(code, where, "exec"), {"__name__": "__main__"})
    print("ran", where, flush=True)
"""


def python_snippets() -> list:
    """(file:line, code, the clevr-remv arguments to run before it or None) of every ```python block
    in docs/*.md."""
    found = []
    for path in sorted((ROOT / "docs").rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            where = f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start(2)) + 1}"
            found.append((where, match.group(2), match.group(1) and shlex.split(match.group(1))))
    return found


def test_every_python_snippet_of_the_docs_runs(tmp_path, monkeypatch):
    """The stream example used DataLoader without importing it; the webdataset one warned about
    shardshuffle."""
    data = tmp_path / "DATA"
    write_synthetic_dataset(data, scenes=10, grid=3, passes=("depth",))
    write_splits(data)
    (tmp_path / "DIR").symlink_to(data)
    pack_dataset(data, tmp_path / "PACKED", views="all")
    pack_dataset(data, tmp_path / "PACKED", views="center", shard_size="1kB")  # a shard per scene
    snippets = python_snippets()
    monkeypatch.chdir(tmp_path)
    for where, _, before in snippets:
        if before:
            result = CliRunner().invoke(main, before)
            assert result.exit_code == 0, f"{where}: clevr-remv {shlex.join(before)}: {result.output}"
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", RUN],
        input=json.dumps([(where, code) for where, code, _ in snippets]),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ran ") == len(snippets) >= 4


def test_no_docstring_holds_a_sphinx_role():
    """The API reference showed `:meth:`, `:class:` and `:func:` as they were written."""
    found = []
    for path in sorted((ROOT / "clevr_remv").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                role = ROLE.search(ast.get_docstring(node, clean=False) or "")
                if role:
                    found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 1)}: {role.group()}")
    assert found == []
