"""`clevr-remv refexps`: regenerate the referring expressions of an existing dataset."""

from pathlib import Path

import click
from tqdm import tqdm

from clevr_remv.dataset.expressions import PENDING
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.refexp.generalized import DEFAULT_TARGET_MIX
from clevr_remv.refexp.generator import EXPRESSION_KINDS, generate_refexps, refexp_settings
from clevr_remv.refexp.templates import load_template_set
from clevr_remv.wording import plural

EXPRESSIONS_HELP = (
    "single: every expression names one object (the paper's); generalized: also multi-target "
    "expressions (two or more objects) and deceptive no-target ones, as in gRefCOCO "
    "(see docs/generalized.md)."
)
TARGET_MIX_HELP = (
    "With --expressions generalized: shares of no-target, single- and multi-target expressions per "
    f"scene, adding up to 1 [default: {','.join(map(str, DEFAULT_TARGET_MIX))}, gRefCOCO's]."
)


def parse_target_mix(ctx, param, value):
    """'0.12,0.59,0.29' -> (0.12, 0.59, 0.29); None stays None (the default mix)."""
    if value is None:
        return None
    try:
        shares = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: write three numbers separated by commas, e.g. 0.12,0.59,0.29") from None
    if len(shares) != 3:
        raise click.BadParameter(f"{value!r}: give three shares (no target, one target, two or more)")
    return shares


@click.command("refexps")
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Dataset root (the --out folder of `clevr-remv generate`).",
)
@click.option(
    "--per-scene",
    default=8,
    show_default=True,
    type=click.IntRange(min=0),
    help="Expressions wanted per scene (fewer when a scene cannot give that many distinct ones).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Random seed of the wording and choices [default: the dataset's generation seed, "
    "which reproduces what `generate` wrote].",
)
@click.option(
    "--templates",
    "templates_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of template JSON files (one per family) and an optional synonyms.json [default: the shipped set].",
)
@click.option(
    "--keep-partial",
    is_flag=True,
    help="Also keep referents that are hidden in some views (their 'views' list says where "
    "they are valid); by default a referent must be visible in every view, as in the paper.",
)
@click.option(
    "--min-visible-pixels",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Pixels a referent needs in a view for the expression to be valid there.",
)
@click.option(
    "--expressions", type=click.Choice(EXPRESSION_KINDS), default="single", show_default=True, help=EXPRESSIONS_HELP
)
@click.option("--target-mix", callback=parse_target_mix, default=None, metavar="P0,P1,P2", help=TARGET_MIX_HELP)
def refexps(data, per_scene, seed, templates_dir, keep_partial, min_visible_pixels, expressions, target_mix):
    """Rewrite scenes/*/refexps.json of a dataset (atomically per scene) without rendering again,
    then update the expression count in dataset.json.

    Until every scene is rewritten, dataset.json marks the dataset as mid-switch and commands that
    read expressions refuse it; an interrupted run is finished by running it again."""
    store = DatasetStore(data)
    load_template_set(templates_dir)  # a bad template folder fails before any scene is touched
    info = store.info()
    seed = info["config"]["seed"] if seed is None else seed
    settings = refexp_settings(
        seed, per_scene, templates_dir, keep_partial, min_visible_pixels, expressions, target_mix
    )
    finished = {key: value for key, value in info.items() if key != PENDING}
    store.write_info(dict(finished, **{PENDING: settings}))  # until every scene is rewritten: readers refuse
    scene_ids = store.scene_ids()
    for index in tqdm(scene_ids, desc="refexps", unit="scene"):
        document = generate_refexps(store.load_scene(index), properties=info["config"]["properties"], **settings)
        write_json_atomic(store.refexps_path(index), document, "refexps")
    store.write_info(dict(finished, refexps=settings))
    counts = store.refresh_counts()
    click.echo(
        f"{plural(len(scene_ids), 'scene')}, {plural(counts['expressions'], 'expression')} written to {store.root}"
    )
