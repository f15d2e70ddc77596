"""Every ``clevr-remv ...`` command line in README.md and docs/ names a real command and real options.

The command lines are read from fenced code blocks, from lines that start with ``clevr-remv``
(indented usage blocks) and from inline code spans, where a span like
``generate --passes depth`` (a command's name and an option) counts as
``clevr-remv generate --passes depth``. Usage notation is understood: ``[--opt X]``
(optional), ``(--a A | --b B)`` (one of), ``a|b|c`` (alternative values), ``\\`` and indented
``[...]`` / ``--...`` lines (continuations), ``# comments`` and ``&&`` / ``;`` chains. Each option
is looked up in the click command (the lazy group imports the command's module), and a value of a
``click.Choice`` option must be one of its choices unless it is an upper-case placeholder.
"""

import re
import shlex
from pathlib import Path

import click
import pytest

from clevr_remv.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = "clevr-remv"
# Command lines the docs show on purpose although they do not run (a deliberate typo).
NOT_COMMANDS = {"clevr-remv valdate"}
COMMAND_NAMES = set(COMMANDS)
HELP_OPTIONS = {"--help", "-h"}
COMMAND_NAME = re.compile(r"[a-z][a-z0-9_-]*$")
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*$")
FENCE = re.compile(r"\s*(```|~~~)")


def doc_files():
    """README.md and every Markdown page under docs/."""
    return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def _continues(line: str) -> bool:
    """An indented line that carries on a usage line: ``[--x X]``, ``--x``, ``(--a | --b)``."""
    return line[:1].isspace() and line.lstrip().startswith(("[", "--", "("))


def _code_lines(lines, start: int):
    """Join continued lines of a code block into (line number, command text) pairs."""
    joined, number, text = [], None, ""
    for offset, line in enumerate(lines):
        if text and (text.endswith("\\") or (PROGRAM in text and _continues(line))):
            text = text.rstrip("\\").rstrip() + " " + line.strip()
            continue
        if text:
            joined.append((number, text))
        number, text = start + offset, line.rstrip()
    if text:
        joined.append((number, text))
    return [(n, t) for n, t in joined if PROGRAM in t]


def extract_commands(markdown: str):
    """(line number, command text) for every line of ``markdown`` that may hold a clevr-remv command."""
    lines = markdown.splitlines()
    found, prose, block, block_start, in_fence = [], [], [], 0, False
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            if in_fence:
                found += _code_lines(block, block_start)
            in_fence, block, block_start = not in_fence, [], number + 1
            prose.append((number, ""))
        elif in_fence:
            block.append(line)
            prose.append((number, ""))
        else:
            prose.append((number, line))
    # Usage lines outside fences (indented blocks, list items): a line starting with the program.
    plain = [(n, line) for n, line in prose]
    index = 0
    while index < len(plain):
        number, line = plain[index]
        if line.strip().startswith(PROGRAM + " ") or line.strip() == PROGRAM:
            text = line.strip()
            while index + 1 < len(plain) and (text.endswith("\\") or _continues(plain[index + 1][1])):
                index += 1
                text = text.rstrip("\\").rstrip() + " " + plain[index][1].strip()
            found.append((number, text))
        index += 1
    # Inline code spans, which may run over a line break.
    text = "\n".join(line for _, line in prose)
    for match in re.finditer(r"`([^`]+)`", text):
        span = " ".join(match.group(1).split())
        words = span.split()
        if words[0] in COMMAND_NAMES and any(word.startswith("--") for word in words):
            span = f"{PROGRAM} {span}"  # `generate --passes depth`: a command named without the program
        if PROGRAM in span:
            found.append((text.count("\n", 0, match.start()) + 1, span))
    return sorted(found)


def _tokens(text: str):
    """Shell-like tokens of one command text, usage brackets removed, comments dropped."""
    text = re.sub(r"(^|\s)#.*$", "", text)
    text = re.sub(r"(^|(?<=[\s(\[]))[\[(]|[\])](?=[\s)\]]|$)", " ", text)  # usage brackets only
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote in prose: split on blanks
        return text.split()


def invocations(text: str):
    """The argument lists that follow ``clevr-remv`` in one command text (chains give several)."""
    tokens, result = _tokens(text), []
    for position, token in enumerate(tokens):
        if token != PROGRAM:
            continue
        arguments = []
        for argument in tokens[position + 1 :]:
            if argument in ("&&", "||", ";") or argument.startswith((">", "2>", "<")):
                break
            arguments.append(argument)
        if arguments and not (arguments[0].startswith("-") or COMMAND_NAME.match(arguments[0])):
            continue  # not an invocation (e.g. `docker build -t clevr-remv .`)
        result.append(arguments)
    return result


def _find_option(command: click.Command, name: str):
    for param in command.params:
        if isinstance(param, click.Option) and name in param.opts + param.secondary_opts:
            return param
    return None


def _check_choice(param, value: str, where: str):
    if not isinstance(param.type, click.Choice):
        return []
    problems = []
    for alternative in value.split("|"):
        if not alternative or PLACEHOLDER.match(alternative) or "$" in alternative or alternative == "...":
            continue
        choices = list(param.type.choices)
        if not param.type.case_sensitive:
            alternative, choices = alternative.lower(), [choice.lower() for choice in choices]
        if alternative not in choices:
            problems.append(f"{where}: {param.opts[0]} has no choice {alternative!r} (choices: {', '.join(choices)})")
    return problems


def check_invocation(arguments, group: click.Group = main):
    """Problems (empty when none) with one argument list run against ``group``."""
    ctx = click.Context(group, info_name=PROGRAM)
    command, path, problems = group, [PROGRAM], []
    index = 0
    while index < len(arguments):
        token = arguments[index]
        index += 1
        where = " ".join(path)
        if token in ("|", "...", "\\"):
            continue
        if token.startswith("-") and len(token) > 1 and not re.match(r"-\d", token):
            name, equals, value = token.partition("=")
            if name in HELP_OPTIONS:
                continue
            param = _find_option(command, name)
            if param is None:
                problems.append(f"{where}: no option {name}")
                if not equals and index < len(arguments) and not arguments[index].startswith("-"):
                    index += 1  # its value, most likely
                continue
            if param.is_flag or param.count or name in param.secondary_opts:
                continue
            if not equals:
                values = arguments[index : index + param.nargs]
                index += param.nargs
                value = values[0] if values else ""
            problems += _check_choice(param, value, where)
        elif isinstance(command, click.Group):
            sub = command.get_command(ctx, token)
            if sub is None:
                problems.append(f"{where}: no command {token!r}")
                return problems
            command, path = sub, path + [token]
        elif not any(isinstance(param, click.Argument) for param in command.params):
            problems.append(f"{where}: unexpected argument {token!r}")
    return problems


def check_markdown(markdown: str, group: click.Group = main, name: str = "<doc>"):
    """Problems with every clevr-remv command in a Markdown text, as 'name:line: command: problem'."""
    problems = []
    for number, text in extract_commands(markdown):
        if any(skip in text for skip in NOT_COMMANDS):
            continue
        for arguments in invocations(text):
            for problem in check_invocation(arguments, group):
                problems.append(f"{name}:{number}: {text!r}: {problem}")
    return problems


# ---- the real documentation ----


def test_every_documented_command_and_option_exists():
    problems, count = [], 0
    for path in doc_files():
        markdown = path.read_text(encoding="utf-8")
        count += sum(len(invocations(text)) for _, text in extract_commands(markdown))
        problems += check_markdown(markdown, name=str(path.relative_to(ROOT)))
    assert not problems, "stale command lines in the docs:\n" + "\n".join(problems)
    assert count >= 40, f"only {count} clevr-remv command lines found: is the extraction broken?"


def test_every_command_is_documented_somewhere():
    documented = set()
    for path in doc_files():
        for _, text in extract_commands(path.read_text(encoding="utf-8")):
            documented.update(arguments[0] for arguments in invocations(text) if arguments)
    missing = set(main.list_commands(click.Context(main))) - documented
    assert not missing, f"commands with no command line in README.md or docs/: {sorted(missing)}"


# ---- the checker itself, on synthetic docs ----


@click.group()
def toy():
    """A stand-in CLI."""


@toy.command("make")
@click.option("--out", required=True)
@click.option("--views", type=click.Choice(["center", "corners", "all"]))
@click.option("--force", is_flag=True)
@click.option("--denoise/--no-denoise", default=True)
def toy_make(out, views, force, denoise):
    """Make something."""


@toy.group("sub")
def toy_sub():
    """A nested group."""


@toy_sub.command("run")
@click.option("--steps", type=int)
def toy_sub_run(steps):
    """Run."""


def test_a_renamed_flag_is_reported():
    doc = "```bash\nclevr-remv generate --out d --scenes 1 --scenez 2\n```\n"
    problems = check_markdown(doc)
    assert len(problems) == 1 and "no option --scenez" in problems[0]
    renamed = click.Group(commands={"make": click.Command("make", params=[click.Option(["--output"])])})
    assert check_markdown("`clevr-remv make --output o`", renamed) == []
    assert "no option --out" in check_markdown("`clevr-remv make --out o`", renamed)[0]


def test_unknown_commands_and_choices_are_reported():
    assert "no command 'mak'" in check_markdown("`clevr-remv mak --out o`", toy)[0]
    assert "no command 'walk'" in check_markdown("`clevr-remv sub walk`", toy)[0]
    assert "no choice 'side'" in check_markdown("`clevr-remv make --out o --views center|side`", toy)[0]
    assert "unexpected argument 'extra'" in check_markdown("`clevr-remv make extra --out o`", toy)[0]


def test_usage_notation_is_understood():
    doc = "\n".join(
        [
            "Usage:",
            "",
            "    clevr-remv make --out DIR [--views center|corners|all] [--force]",
            "        [--no-denoise] (--out A | --out B)",
            "",
            "```bash",
            "clevr-remv make --out o \\",
            "    --views corners   # a comment with --bogus",
            "pip install x && clevr-remv sub run --steps 3 && echo done",
            "clevr-remv --help",
            "docker build -t clevr-remv .",
            "```",
            "",
            "Inline, over a line break: `clevr-remv make --out o",
            "--views=all`, and `clevr-remv[cluster]` is no command.",
        ]
    )
    commands = extract_commands(doc)
    assert [number for number, _ in commands] == [3, 7, 9, 10, 11, 14, 15]
    assert commands[0][1].endswith("[--no-denoise] (--out A | --out B)")
    assert commands[1][1] == "clevr-remv make --out o --views corners   # a comment with --bogus"
    assert invocations(commands[2][1]) == [["sub", "run", "--steps", "3"]]
    assert invocations(commands[4][1]) == [] and invocations(commands[6][1]) == []
    assert check_markdown(doc, toy) == []
    broken = doc.replace("--views corners", "--view corners").replace("--steps 3", "--step 3")
    assert len(check_markdown(broken, toy)) == 2


def test_a_placeholder_value_is_not_a_choice():
    assert check_markdown("`clevr-remv make --out OUT --views VIEWS`", toy) == []
    assert check_markdown('`clevr-remv make --out o --views "$VIEWS"`', toy) == []


@pytest.mark.parametrize("flag", ["--force", "--no-denoise", "--denoise"])
def test_flags_take_no_value(flag):
    # A flag followed by a word would swallow it as a value if flags were not known as flags.
    assert "unexpected argument 'extra'" in check_markdown(f"`clevr-remv make --out o {flag} extra`", toy)[0]


def test_the_readme_shows_the_command_ci_runs():
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    test_command = next(line for line in ci_lines if line.startswith("pip install") and "pytest" in line)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert test_command in readme.splitlines(), f"README.md's set-up step 2 and .ci/run differ: {test_command!r}"
    apt = next(line for line in readme.splitlines() if "apt-get install" in line)
    assert apt.startswith("apt-get update && ") and "as root" in apt  # as .ci/run: a fresh machine has no lists
    assert "ruff" in readme and "mkdocs build --strict" in readme  # what else CI runs


def command_table(markdown: str) -> dict:
    """{command: what it does} of the Markdown table whose header starts with ``| command |``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| command |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        names, what = (cell.strip() for cell in line.strip("|").split("|")[:2])
        rows.update(dict.fromkeys(re.findall(r"`([^`]+)`", names), what))
    return rows


def test_the_command_tables_list_every_command_alike():
    """getting-started's table lacked pack, unpack and the newer export formats."""
    readme = command_table((ROOT / "README.md").read_text(encoding="utf-8"))
    assert sorted(readme) == sorted(COMMANDS)
    assert command_table((ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")) == readme
