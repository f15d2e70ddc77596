"""The dataset commands: ``split``, ``stats``, ``validate``, ``show``, ``pack``, ``unpack`` and ``croissant``.

Each command imports its library module only when it runs, so ``split`` does not load matplotlib.
"""

import json
import warnings
from pathlib import Path

import click

from clevr_remv.dataset.splits import DEFAULT_RATIOS
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.wording import plural


@click.command("split")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Dataset root (the --out folder of `clevr-remv generate`).",
)
@click.option(
    "--ratios",
    default=None,
    help=f"Fractions of scenes for train,val,test; must sum to 1  [default: the split file's, else {DEFAULT_RATIOS}]",
)
@click.option(
    "--seed",
    default=None,
    type=int,
    help="Seed of the scene shuffle; the same seed and ratios always give the same split  "
    "[default: the split file's, else 0]",
)
def split_command(data_dir, ratios, seed):
    """Assign whole scenes to train / val / test and write DATA/splits.json.

    A scene never spans two splits, and a scene's split never changes: run again after
    generating more scenes, only the new ones are assigned (with the file's ratios and seed).
    Rerunning with no new scene leaves the file unchanged.
    """
    from clevr_remv.dataset.splits import empty_split_warnings, write_splits

    document, new, missing = write_splits(data_dir, ratios, seed)
    counts = " / ".join(f"{name} {len(ids)}" for name, ids in document["splits"].items())
    action = "wrote" if new else "unchanged:"
    click.echo(
        f"{action} {DatasetStore(data_dir).splits_path} ({counts} scenes, seed {document['seed']}; "
        f"{new} newly assigned)"
    )
    if missing:
        warnings.warn(
            f"the split file lists {plural(len(missing), 'scene')} not complete on disk (e.g. "
            f"{', '.join(map(str, missing[:5]))}); listed scenes keep their split: rerun `clevr-remv generate` "
            "to make the missing ones again",
            stacklevel=1,
        )
    for line in empty_split_warnings(document):
        warnings.warn(line, stacklevel=1)


@click.command("stats")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Dataset root (the --out folder of `clevr-remv generate`).",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="Folder for stats.json and the PNG plots: DATA/stats or a folder outside the dataset [default: DATA/stats]",
)
def stats_command(data_dir, out_dir):
    """Print per-split statistics (scenes, views, pairs, objects, words, family mix) and
    write stats.json with PNG plots of the object-count, expression-length and visible-area
    distributions."""
    from clevr_remv.dataset.outdir import check_output_dir, only_names, write_manifest
    from clevr_remv.dataset.stats import ALL_SCENES, dataset_stats, format_table, write_plots

    default = DatasetStore(data_dir).root / "stats"
    out_dir = check_output_dir(
        out_dir or default, "stats", {"--data": data_dir}, allowed=[default], ours=only_names("stats.json", "*.png")
    )
    stats = dataset_stats(data_dir, progress=True)
    write_manifest(out_dir, "stats")
    if ALL_SCENES in stats["splits"]:
        click.echo(f"no splits.json yet: statistics of all scenes (run `clevr-remv split --data {data_dir}`)")
    click.echo(format_table(stats))
    write_json_atomic(out_dir / "stats.json", stats)
    plots = write_plots(stats, out_dir)
    click.echo(f"wrote {out_dir / 'stats.json'} and {len(plots)} plots in {out_dir}")


@click.command("validate")
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset root (the --out folder of `clevr-remv generate`), or a packed folder "
    "(`clevr-remv pack`): every shard against its manifest.",
)
@click.option("--quick", is_flag=True, help="Check files, schemas and image headers only; skip decoding the pixels.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes that check scenes in parallel.",
)
def validate_command(data, quick, workers):
    """Check every file of a dataset; list each problem with its path.

    Exits 1 when any error is found, 0 otherwise (warnings, such as leftover .tmp-* folders
    of an interrupted run, do not fail the check).
    """
    from clevr_remv.dataset.problems import ERROR
    from clevr_remv.dataset.validate import validate_dataset

    problems = validate_dataset(data, quick=quick, workers=workers, progress=not quick)
    errors = [problem for problem in problems if problem.severity == ERROR]
    for problem in problems:
        click.echo(str(problem))
    mode = "quick check" if quick else "full check"
    click.echo(f"{mode} of {data}: {plural(len(errors), 'error')}, {plural(len(problems) - len(errors), 'warning')}")
    click.get_current_context().exit(1 if errors else 0)


@click.command("show")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Dataset root (the --out folder of `clevr-remv generate`).",
)
@click.option("--scene", required=True, type=int, help="Scene index (the number of its folder).")
@click.option(
    "--expression",
    default=0,
    show_default=True,
    type=int,
    help="Expression id in the scene's refexps.json whose referent is outlined.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="Output image, e.g. sheet.png.",
)
def show_command(data_dir, scene, expression, out_path):
    """Draw a contact sheet of a scene's view grid: thumbnails arranged like the cameras
    (u left to right, v top to bottom), the referent's mask outlined, the expression as title."""
    from clevr_remv.dataset.show import write_contact_sheet

    folder = Path(out_path).parent
    created = "" if folder.is_dir() else f" (created folder {folder})"
    click.echo(f"wrote {write_contact_sheet(data_dir, scene, expression, out_path)}{created}")


@click.command("pack")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Dataset root (the --out folder of `clevr-remv generate`), with its splits.json.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Packed folder to write (new, or an earlier pack of the same dataset: resumed or extended; one pack "
    "at a time writes it).",
)
@click.option(
    "--split",
    default="all",
    show_default=True,
    type=click.Choice(["train", "val", "test", "all"]),
    help="Split to pack; all packs every split of splits.json.",
)
@click.option(
    "--views",
    default="all",
    show_default=True,
    help="center, corners, all, or view names such as u1_v1,u9_v9 (or u1_v1+u9_v9, as its folder is named); "
    "each view set is its own subset (folder and Hugging Face config) of the packed folder.",
)
@click.option(
    "--shard-size",
    default="512MB",
    show_default=True,
    help="Largest shard (a scene bigger than this gets a shard of its own), e.g. 512MB, 2GB, 256MiB.",
)
def pack_command(data_dir, out_dir, split, views, shard_size):
    """Pack a dataset into checksummed tar shards (WebDataset convention) with manifest.json and a
    Hugging Face dataset card.

    One sample is one scene: its scene.json, refexps.json and the chosen views' PNGs, byte for byte.
    Resumable: run the same command again and only missing or damaged shards are written.
    """
    from clevr_remv.dataset.packed.layout import format_size
    from clevr_remv.dataset.packed.pack import pack_dataset

    name, reports = pack_dataset(data_dir, out_dir, split=split, views=views, shard_size=shard_size, progress=True)
    for report in reports:
        click.echo(
            f"{name}/{report.split}: {plural(report.written + report.kept, 'shard')} ({report.written} written, "
            f"{report.kept} kept), {plural(report.samples, 'scene')}, {format_size(report.bytes)}"
        )
    click.echo(
        f"wrote {Path(out_dir) / 'manifest.json'}, the dataset card {Path(out_dir) / 'README.md'} and "
        f"{Path(out_dir) / 'croissant.json'}; "
        f"check the shards with `clevr-remv validate --data {out_dir}`"
    )


@click.command("unpack")
@click.option(
    "--data",
    "packed_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Packed folder (the --out folder of `clevr-remv pack`, packed with --views all).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Dataset folder to write (new; an interrupted unpack into it resumes).",
)
def unpack_command(packed_dir, out_dir):
    """Rebuild the dataset folder from a packed folder: the same files, byte for byte."""
    from clevr_remv.dataset.packed.unpack import unpack_dataset

    written, kept = unpack_dataset(packed_dir, out_dir, progress=True)
    resumed = f" ({kept} already there from an earlier run)" if kept else ""
    click.echo(f"wrote {written} scenes{resumed} and dataset.json, splits.json into {out_dir}")


@click.command("croissant")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Dataset root (the --out folder of `clevr-remv generate`) or a packed folder (`clevr-remv pack`).",
)
@click.option(
    "--out",
    "out_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="Croissant file to write (.json or .jsonld), DATA/croissant.json or a file outside DATA; its paths are "
    "relative to DATA, so readers find the files when it lies in DATA  [default: DATA/croissant.json]",
)
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
def croissant_command(data_dir, out_path, force):
    """Write Croissant metadata (MLCommons JSON-LD 1.1) for a dataset folder or a packed folder.

    It lists the files (with SHA-256 where known) and the record sets mlcroissant reads: config
    (generator and light-field rig), expressions (refexps per scene in a packed folder), and the
    views' RGB images, index masks and depth maps.
    """
    from clevr_remv.dataset.croissant import write_croissant

    out = write_croissant(data_dir, out_path, force)
    document = json.loads(out.read_text())
    names = ", ".join(record_set["@id"] for record_set in document["recordSet"])
    click.echo(f"wrote {out}: {len(document['distribution'])} files and file sets; record sets {names}")
    if out.resolve().parent != Path(data_dir).resolve():
        click.echo(
            f"its paths are relative to {data_dir}: put it there (as croissant.json) to read it with mlcroissant"
        )
