"""The ``clevr-remv`` command line: one click group, one subcommand per job.

Subcommands are imported only when they run, so ``clevr-remv --help`` stays fast and
commands that do not need torch or bpy never import them.
"""

import difflib
import importlib
import warnings

import click

from clevr_remv import __version__
from clevr_remv.errors import ClevrRemvError

# name -> "module:attribute" of a click command; each module owns one job.
COMMANDS = {
    "generate": "clevr_remv.generate.cli:generate",
    "refexps": "clevr_remv.refexp.cli:refexps",
    "split": "clevr_remv.dataset.cli:split_command",
    "stats": "clevr_remv.dataset.cli:stats_command",
    "validate": "clevr_remv.dataset.cli:validate_command",
    "show": "clevr_remv.dataset.cli:show_command",
    "pack": "clevr_remv.dataset.cli:pack_command",
    "unpack": "clevr_remv.dataset.cli:unpack_command",
    "croissant": "clevr_remv.dataset.cli:croissant_command",
    "export": "clevr_remv.dataset.export.cli:export",
    "evaluate": "clevr_remv.res.cli:evaluate_command",
    "evaluate-depth": "clevr_remv.depth_bench.cli:evaluate_depth_command",
    "pretrain": "clevr_remv.res.cli:pretrain_command",
    "benchmark": "clevr_remv.res.cli:benchmark",
    "retrieval": "clevr_remv.retrieval.cli:retrieval",
    "view": "clevr_remv.view.cli:view",
}

SHORT_HELP = {
    "generate": "Lay out and render CLEVR-REMV scenes (resumable).",
    "refexps": "Regenerate referring expressions for an existing dataset.",
    "split": "Assign scenes to train / val / test.",
    "stats": "Print dataset statistics and write plots.",
    "validate": "Check every file of a dataset.",
    "show": "Draw a contact sheet of a scene's views and a referent's masks.",
    "pack": "Pack a dataset into checksummed WebDataset tar shards.",
    "unpack": "Rebuild the dataset folder from packed shards.",
    "croissant": "Write Croissant metadata (MLCommons JSON-LD) for a dataset or packed folder.",
    "export": "Export to RefCOCO (REFER), gRefCOCO, CLEVR-Ref+, COCO or HCI light-field formats.",
    "evaluate": "Score RES predictions (P@K, mIoU, oIoU, MVR).",
    "evaluate-depth": "Score light-field disparity maps (BadPix, MSE, Q25) as the 4D LF Benchmark does.",
    "pretrain": "Pretrain the CNN encoder on per-cell object attributes (train centre views).",
    "benchmark": "Train and test an RES model on centre and shifted views.",
    "retrieval": "Image-text retrieval: VSE++ losses vs the IMC loss.",
    "view": "Browse light fields, expressions and predictions in a web browser.",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx, formatter):
        rows = [(name, SHORT_HELP[name]) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx, args):
        """As click's, but a mistyped command name gets the closest names as a suggestion."""
        name = click.utils.make_str(args[0])
        if name not in COMMANDS and not name.startswith("-"):
            close = difflib.get_close_matches(name, COMMANDS, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(match) for match in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint} (`clevr-remv --help` lists them all)")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *_: click.echo(f"Warning: {message}", err=True)
            try:
                return super().invoke(ctx)
            except ClevrRemvError as error:
                click.echo(f"Error: {error}", err=True)
                ctx.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clevr-remv")
def main():
    """Generate CLEVR-REMV, a multi-view referring-expression segmentation dataset,
    and benchmark models on it."""
