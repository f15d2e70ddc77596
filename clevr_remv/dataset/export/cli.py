"""`clevr-remv export`: write a dataset in the REFER (refcoco), gRefCOCO (grefcoco), CLEVR-Ref+, COCO
or 4D Light Field Benchmark (hci-lf) layout."""

from pathlib import Path

import click

from clevr_remv.dataset.export.clevr_ref import export_clevr_ref
from clevr_remv.dataset.export.coco import export_coco
from clevr_remv.dataset.export.common import select_scenes
from clevr_remv.dataset.export.grefcoco import MASK_FORMATS, export_grefcoco
from clevr_remv.dataset.export.hci_lf import export_hci_lf
from clevr_remv.dataset.export.refcoco import IMAGE_FOLDERS, export_refcoco
from clevr_remv.dataset.outdir import staged_output_dir
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.geometry import VIEW_SETS, select_views

FORMATS = ("refcoco", "grefcoco", "clevr-ref+", "coco", "hci-lf")


@click.command("export")
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset root (the --out folder of `clevr-remv generate`).",
)
@click.option(
    "--format",
    "format_name",
    required=True,
    type=click.Choice(FORMATS),
    help="refcoco: REFER layout for LAVT/CRIS (needs splits.json); grefcoco: gRefCOCO layout for "
    "generalized RES code (grefer.py; no-target and multi-target refs; needs splits.json); "
    "clevr-ref+: CLEVR-Ref+ "
    "scenes/refexps JSON; coco: COCO instance segmentation; hci-lf: 4D Light Field Benchmark "
    "folders with depth and disparity (needs a dataset made with --passes depth).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder, outside the dataset; written to a temporary folder and renamed at the end.",
)
@click.option(
    "--split",
    default=None,
    help="Export only this split of splits.json (default: every split; for clevr-ref+ and "
    "coco without splits.json, all scenes as split 'all').",
)
@click.option(
    "--views",
    default="center",
    show_default=True,
    type=click.Choice(VIEW_SETS),
    help="Which views become images: the centre view, the four corners, or all views "
    "(hci-lf always exports every view).",
)
@click.option(
    "--name",
    default="refcoco",
    show_default=True,
    type=click.Choice(list(IMAGE_FOLDERS)),
    help="refcoco only: REFER dataset name (decides the folder and where images go).",
)
@click.option(
    "--split-by",
    default="unc",
    show_default=True,
    help="refcoco and grefcoco: the REFER splitBy, i.e. the refs(<split-by>).p / grefs(<split-by>).json file name.",
)
@click.option(
    "--mask-format",
    type=click.Choice(MASK_FORMATS),
    default="grefer",
    show_default=True,
    help="grefcoco only: segmentations as a one-element list of RLEs (grefer.py's getMask) or as "
    "the RLE itself (detectron2 loaders such as ReLA's).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an earlier export in --out (once the new one is complete); only the files "
    "that export wrote are removed, and a folder holding others is refused.",
)
@click.option(
    "--link", is_flag=True, help="Hard-link images instead of copying them (falls back to copying across file systems)."
)
def export(data, format_name, out, split, views, name, split_by, mask_format, force, link):
    """Export to RefCOCO (REFER), gRefCOCO, CLEVR-Ref+, COCO or 4D Light Field Benchmark (hci-lf)
    formats so existing code runs unchanged.

    Each exported (scene, view) is one image; an expression becomes one sample per exported
    view in which its referent is visible. hci-lf writes one folder per scene with every view.
    """
    store = DatasetStore(data)
    selected_views = select_views(views, store.grid)
    if format_name == "hci-lf":
        _check_hci_lf(store)
    split_scenes = select_scenes(store, split, require_splits=format_name in ("refcoco", "grefcoco"))
    with staged_output_dir(out, "export", force=force, inputs={"--data": data}) as tmp:
        if format_name == "refcoco":
            counts = export_refcoco(store, tmp, split_scenes, selected_views, name=name, split_by=split_by, link=link)
        elif format_name == "grefcoco":
            counts = export_grefcoco(
                store, tmp, split_scenes, selected_views, split_by=split_by, mask_format=mask_format, link=link
            )
        elif format_name == "clevr-ref+":
            counts = export_clevr_ref(store, tmp, split_scenes, selected_views, link=link)
        elif format_name == "coco":
            counts = export_coco(store, tmp, split_scenes, selected_views, link=link)
        else:
            counts = export_hci_lf(store, tmp, split_scenes, link=link)
    summary = ", ".join(f"{value} {key}" for key, value in counts.items())
    exported_views = "all" if format_name == "hci-lf" else views
    click.echo(f"exported {format_name} ({', '.join(split_scenes)}; {exported_views} views) to {out}: {summary}")
    if format_name == "refcoco":
        click.echo(f"LAVT: --refer_data_root {out.absolute()} --dataset {name} --splitBy {split_by}")
    if format_name == "grefcoco":
        click.echo(f"grefer.py: G_REFER({str(out.absolute())!r}, 'grefcoco', {split_by!r})")


def _check_hci_lf(store: DatasetStore) -> None:
    """Refuse hci-lf exports of datasets without depth, and a --views that cannot apply."""
    store.require_depth("--format hci-lf", "regenerate the dataset with `clevr-remv generate --passes depth`")
    if click.get_current_context().get_parameter_source("views") is not click.core.ParameterSource.DEFAULT:
        raise ClevrRemvError("--views: hci-lf exports every view of the grid (a whole light field); leave out --views")
