"""`show`: thumbnails placed as the cameras are, outlines, labels, title, errors."""

import numpy as np
import pytest
from builders import break_png
from click.testing import CliRunner
from matplotlib.contour import ContourSet
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.dataset.show import contact_sheet
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.errors import ClevrRemvError


@pytest.fixture
def marked_views(tiny_dataset_copy):
    """Scene 0 with every view's RGB a flat colour encoding (u, v), and expression 0 valid
    in two views only."""
    store = DatasetStore(tiny_dataset_copy)
    for u, v in store.views():
        Image.fromarray(np.full((32, 48, 3), (40 * u, 40 * v, 7), np.uint8)).save(store.rgb_path(0, u, v))
    refexps = store.load_refexps(0)
    refexps["expressions"][0]["views"] = [[2, 2], [3, 1]]
    write_json_atomic(store.refexps_path(0), refexps, "refexps")
    return store


def image_axes(figure):
    """The thumbnail axes sorted top row first, left to right (by their place on the sheet)."""
    axes = [axis for axis in figure.axes if axis.images]
    return sorted(axes, key=lambda axis: (-round(axis.get_position().y0, 3), axis.get_position().x0))


def test_thumbnails_are_arranged_u_left_to_right_v_top_to_bottom(marked_views):
    figure = contact_sheet(marked_views.root, scene=0)
    axes = image_axes(figure)
    assert len(axes) == 9
    for axis, (u, v) in zip(axes, [(u, v) for v in (1, 2, 3) for u in (1, 2, 3)], strict=True):
        assert tuple(axis.images[0].get_array()[0, 0]) == (40 * u, 40 * v, 7)
    assert [axis.get_title() for axis in axes[:3]] == ["u=1", "u=2", "u=3"]
    assert [axes[i].get_ylabel() for i in (0, 3, 6)] == ["v=1", "v=2", "v=3"]


def test_referent_outlined_everywhere_and_invalid_views_marked(marked_views):
    figure = contact_sheet(marked_views.root, scene=0, expression_id=0)
    expression = marked_views.load_refexps(0)["expressions"][0]
    assert expression["text"] in figure.get_suptitle()
    for axis, (u, v) in zip(image_axes(figure), marked_views.views(), strict=True):
        has_outline = any(isinstance(child, ContourSet) for child in axis.get_children())
        assert has_outline == bool((marked_views.read_index(0, u, v) == expression["referent"]).any())
        marked = any(text.get_text() == "not valid" for text in axis.texts)
        assert marked == ((u, v) not in {(2, 2), (3, 1)})


def test_cli_writes_png_with_default_expression(tiny_dataset, tmp_path):
    out = tmp_path / "sheets" / "scene1.png"
    result = CliRunner().invoke(main, ["show", "--data", str(tiny_dataset), "--scene", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 1000 and image.height > 600
    assert [path.name for path in out.parent.iterdir()] == ["scene1.png"]  # no temporary file left


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--scene", "99"], "--scene: scene 99"),
        (["--scene", "0", "--expression", "42"], "--expression: scene 0 has no expression 42"),
    ],
)
def test_cli_errors_name_the_flag(tiny_dataset, tmp_path, arguments, fragment):
    result = CliRunner().invoke(
        main, ["show", "--data", str(tiny_dataset), "--out", str(tmp_path / "x.png")] + arguments
    )
    assert result.exit_code == 2 and fragment in result.output
    assert not (tmp_path / "x.png").exists()


def test_not_a_dataset(tmp_path):
    with pytest.raises(ClevrRemvError, match="not a CLEVR-REMV dataset"):
        contact_sheet(tmp_path, scene=0)


@pytest.mark.parametrize("how", ["truncate", "text"])
def test_cli_unreadable_view_is_a_clear_error(tiny_dataset_copy, tmp_path, how):
    path = DatasetStore(tiny_dataset_copy).rgb_path(1, 2, 1)
    break_png(path, how)
    result = CliRunner().invoke(
        main, ["show", "--data", str(tiny_dataset_copy), "--scene", "1", "--out", str(tmp_path / "x.png")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Error: {path}: cannot be read as an image (" in result.output
    assert not (tmp_path / "x.png").exists()


def test_cli_says_when_it_creates_the_out_folder(tiny_dataset, tmp_path):
    out = tmp_path / "new" / "sheets" / "x.png"
    runner = CliRunner()
    arguments = ["show", "--data", str(tiny_dataset), "--scene", "1", "--out", str(out)]
    result = runner.invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert f"created folder {out.parent}" in result.output and out.is_file()
    again = runner.invoke(main, arguments)
    assert again.exit_code == 0 and "created" not in again.output


@pytest.mark.parametrize("name", ["sheet.json", "sheet.txt", "sheet.pn"])
def test_an_unsupported_extension_is_refused_up_front_naming_the_supported_ones(
    tiny_dataset, tmp_path, monkeypatch, name
):
    monkeypatch.setattr("clevr_remv.dataset.show.contact_sheet", lambda *a: pytest.fail("drew the sheet"))
    result = CliRunner().invoke(
        main, ["show", "--data", str(tiny_dataset), "--scene", "1", "--out", str(tmp_path / name)]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"--out {tmp_path / name}: unsupported extension" in result.output
    assert ".png" in result.output and ".pdf" in result.output and ".svg" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_sheet_inside_the_dataset_is_refused(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    target = store.rgb_path(1, 2, 2)
    before = target.read_bytes()
    for out in (target, tiny_dataset_copy / "sheet.png", tiny_dataset_copy / "scenes" / ".." / "x.png"):
        result = CliRunner().invoke(main, ["show", "--data", str(tiny_dataset_copy), "--scene", "1", "--out", str(out)])
        assert result.exit_code == 2 and "lies inside --data" in result.output, result.output
    assert target.read_bytes() == before and not (tiny_dataset_copy / "sheet.png").exists()
    assert not (tiny_dataset_copy / "x.png").exists()
