"""evaluate --predictor: the trivial floors on a hand-made view whose scores are worked out by hand."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from clevr_remv.cli import main
from clevr_remv.dataset.splits import split_scene_ids
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.res.evaluate import evaluate
from clevr_remv.res.trivial import AttributeParser, TrivialPredictions

CENTER = (2, 2)
# Objects 1-3 of the hand-made centre view: (size, colour, material, shape) and a box of pixels.
OBJECTS = [
    (("large", "red", "rubber", "cube"), (0, 10, 0, 10)),  # 100 pixels
    (("small", "blue", "metal", "sphere"), (20, 24, 20, 25)),  # 20 pixels
    (("small", "blue", "rubber", "cylinder"), (12, 17, 30, 36)),
]  # 30 pixels
# (text, referent): attribute words name a unique object for the first two only.
EXPRESSIONS = [
    ("The big red matte block.", 1),
    ("The shiny thing that is to the right of the large cube.", 2),
    ("The tiny object.", 3),
    ("Counting from the left, the second rubber thing.", 3),
]


@pytest.fixture
def hand_made(tiny_dataset_copy):
    """The tiny dataset with its test scene's centre view replaced by three known objects
    (100, 20 and 30 pixels, no other object visible) and four known expressions on that view."""
    store = DatasetStore(tiny_dataset_copy)
    (scene,) = split_scene_ids(store, "test")
    index = np.zeros((32, 48), np.uint8)
    scene_json = json.loads(store.scene_json_path(scene).read_text())
    for number, ((size, color, material, shape), (y0, y1, x0, x1)) in enumerate(OBJECTS, 1):
        index[y0:y1, x0:x1] = number
        scene_json["objects"][number - 1].update(size=size, color=color, material=material, shape=shape)
    store.scene_json_path(scene).write_text(json.dumps(scene_json))
    Image.fromarray(index).save(store.index_path(scene, *CENTER))
    refexps = json.loads(store.refexps_path(scene).read_text())
    refexps["expressions"] = [
        dict(refexps["expressions"][0], id=i, text=text, referent=referent, views=[list(CENTER)])
        for i, (text, referent) in enumerate(EXPRESSIONS)
    ]
    store.refexps_path(scene).write_text(json.dumps(refexps))
    return tiny_dataset_copy, scene


def run(root, tmp_path, predictor, seed=0):
    return evaluate(
        root, split="test", views="center", out=tmp_path / predictor, progress=False, predictor=predictor, seed=seed
    )


@pytest.mark.parametrize(
    "predictor, miou, oiou",
    [
        ("empty", 0.0, 0.0),
        # Object 1 every time: right for the first expression only; U = 100 + 120 + 130 + 130.
        ("largest", 25.0, 100 * 100 / 480),
        # Objects 1 and 2 found by their words, none for the last two (U = 30 each).
        ("attributes", 50.0, 100 * 120 / 180),
    ],
)
def test_predictor_scores_match_the_hand_computation(hand_made, tmp_path, predictor, miou, oiou):
    root, _ = hand_made
    results = run(root, tmp_path, predictor)
    assert results["samples"] == 4 and results["missing_predictions"] == 0
    assert results["center"]["mIoU"] == pytest.approx(miou)
    assert results["center"]["oIoU"] == pytest.approx(oiou)
    assert results["predictor"] == {"name": predictor, "seed": 0}
    assert results["predictions"] == f"predictor:{predictor}"
    assert (tmp_path / predictor / "results.md").is_file()


def test_random_picks_a_visible_object_uniformly_and_reproducibly(hand_made, tmp_path):
    root, scene = hand_made
    store = DatasetStore(root)
    index = store.read_index(scene, *CENTER)
    picks = [TrivialPredictions(store, "random", seed).choose((scene, 0, *CENTER), index) for seed in range(300)]
    assert set(picks) == {1, 2, 3}
    assert all(abs(picks.count(k) / 300 - 1 / 3) < 0.1 for k in (1, 2, 3))
    first, again = run(root, tmp_path, "random", seed=7), run(root, tmp_path, "random", seed=7)
    assert first["center"] == again["center"]
    # Each guess is a whole object, right or wrong: every IoU is 0 or 1.
    assert first["center"]["mIoU"] == pytest.approx(first["center"]["P@0.9"])


def test_no_visible_object_gives_the_empty_mask(hand_made):
    root, scene = hand_made
    store = DatasetStore(root)
    for name in ("largest", "random", "attributes"):
        assert TrivialPredictions(store, name).choose((scene, 0, *CENTER), np.zeros((4, 4), np.uint8)) is None


def test_attribute_words_use_the_synonyms_and_stop_at_the_first_noun(tiny_dataset):
    info = DatasetStore(tiny_dataset).info()
    synonyms = {
        "large": ["large", "big"],
        "metal": ["metal", "shiny"],
        "cube": ["cube", "block"],
        "thing": ["thing", "object"],
    }
    parse = AttributeParser(info["config"]["properties"], synonyms)
    assert parse("The big shiny block left of the red sphere.") == {
        "size": "large",
        "material": "metal",
        "shape": "cube",
    }
    assert parse("The object that has the same color as the small cube.") == {}
    assert parse("Counting from the right, the third cyan thing.") == {"color": "cyan"}


def test_exactly_one_source_is_required(tiny_dataset, tmp_path):
    with pytest.raises(ClevrRemvError, match="exactly one"):
        evaluate(tiny_dataset, out=tmp_path / "o", progress=False)
    with pytest.raises(ClevrRemvError, match="exactly one"):
        evaluate(tiny_dataset, tmp_path / "p.jsonl", out=tmp_path / "o", progress=False, predictor="empty")
    with pytest.raises(ClevrRemvError, match="--predictor: unknown predictor 'best'"):
        evaluate(tiny_dataset, out=tmp_path / "o", progress=False, predictor="best")


def test_attributes_needs_the_datasets_template_folder(tiny_dataset_copy, tmp_path):
    path = tiny_dataset_copy / "dataset.json"
    info = json.loads(path.read_text())
    info["refexps"]["templates_dir"] = str(tmp_path / "moved-templates")
    path.write_text(json.dumps(info))
    with pytest.raises(ClevrRemvError, match="dataset.json: the expressions were made with the templates in"):
        evaluate(tiny_dataset_copy, out=tmp_path / "o", progress=False, predictor="attributes")
    assert not (tmp_path / "o").exists()


def test_cli(hand_made, tmp_path):
    root, _ = hand_made
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "evaluate",
            "--data",
            str(root),
            "--predictor",
            "largest",
            "--views",
            "center",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "centre: mIoU 25.00  oIoU 20.83" in result.output
    both = runner.invoke(
        main,
        [
            "evaluate",
            "--data",
            str(root),
            "--predictor",
            "empty",
            "--predictions",
            str(tmp_path / "p.jsonl"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert both.exit_code == 2 and "exactly one" in both.output
    assert not (tmp_path / "o").exists()
