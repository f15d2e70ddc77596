import math

import numpy as np
import pytest

from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate import layout
from clevr_remv.generate.properties import load_properties

PROPERTIES = load_properties()


@pytest.mark.parametrize("index", range(60))
def test_clevr_placement_rules_hold(index):
    scene = layout.sample_layout(seed=7, index=index, attempt=0, properties=PROPERTIES)
    objects = scene["objects"]
    assert 3 <= len(objects) <= 10
    for obj in objects:
        x, y, z = obj["3d_coords"]
        assert -3 <= x <= 3 and -3 <= y <= 3
        assert z == pytest.approx(obj["radius"])
        assert 0 <= obj["rotation"] < 360
        kind = PROPERTIES["shapes"][obj["shape"]]
        expected = PROPERTIES["sizes"][obj["size"]] / (math.sqrt(2) if kind == "cube" else 1)
        assert obj["radius"] == pytest.approx(expected)
    for i, a in enumerate(objects):
        for b in objects[i + 1 :]:
            dx = np.subtract(a["3d_coords"][:2], b["3d_coords"][:2])
            assert np.hypot(*dx) - a["radius"] - b["radius"] >= layout.MIN_DIST
            for name in layout.GROUND_DIRECTIONS:
                along = abs(float(dx @ np.asarray(scene["directions"][name][:2])))
                assert along >= layout.MARGIN


def test_object_count_follows_flags():
    counts = {len(layout.sample_layout(0, i, 0, PROPERTIES, 4, 5)["objects"]) for i in range(40)}
    assert counts == {4, 5}


def test_layout_depends_on_seed_index_attempt_only():
    a = layout.sample_layout(3, 11, 0, PROPERTIES)
    assert a == layout.sample_layout(3, 11, 0, PROPERTIES)
    assert a != layout.sample_layout(3, 12, 0, PROPERTIES)
    assert a != layout.sample_layout(3, 11, 1, PROPERTIES)
    assert a != layout.sample_layout(4, 11, 0, PROPERTIES)


def test_jitter_is_stored_and_bounded():
    scene = layout.sample_layout(0, 5, 0, PROPERTIES)
    jitter = scene["camera"]["jitter"]
    assert np.allclose(np.add(layout.CAMERA_LOCATION, jitter), scene["camera"]["location"])
    assert max(map(abs, jitter)) <= layout.CAMERA_JITTER
    for light, (name, base, _) in zip(scene["lights"], layout.LIGHTS, strict=True):
        assert light["name"] == name
        assert np.allclose(np.add(base, light["jitter"]), light["location"])
        assert max(map(abs, light["jitter"])) <= layout.LIGHT_JITTER


def test_directions_come_from_the_camera():
    directions = layout.ground_directions(layout.CAMERA_LOCATION)
    right, behind = np.array(directions["right"]), np.array(directions["behind"])
    assert right[2] == behind[2] == 0
    assert abs(right @ behind) < 1e-9
    # The camera stands in front of the scene (negative y, positive x): behind points away from it.
    assert behind @ np.array(layout.CAMERA_LOCATION) < 0
    assert np.allclose(directions["left"], -right) and np.allclose(directions["front"], -behind)


def test_relationships_follow_eps_and_are_antisymmetric():
    directions = layout.ground_directions(layout.CAMERA_LOCATION)
    right = np.array(directions["right"])
    objects = [
        {"3d_coords": [0, 0, 0.35]},
        {"3d_coords": list(right * 0.5 + [0, 0, 0.35])},
        {"3d_coords": list(right * 0.1 + [0, 0, 0.35])},
    ]
    relations = layout.relationships(objects, directions)
    assert relations["right"][0] == [1]  # 0.5 > eps; 0.1 is not
    assert 0 in relations["left"][1] and 2 in relations["left"][1]
    for i in range(3):
        for j in relations["right"][i]:
            assert i in relations["left"][j]


def test_impossible_layout_is_a_clear_error():
    huge = dict(PROPERTIES, sizes={"huge": 1.5})
    with pytest.raises(ClevrRemvError, match="could not place 10 objects"):
        layout.sample_layout(0, 0, 0, huge, 10, 10)


# CLEVR's own values (render_images.py: --min_dist 0.25, --margin 0.4, camera jitter 0.5, key /
# fill / back light jitter 1.0), written out here rather than read from the module under test.
CLEVR_MIN_DIST, CLEVR_MARGIN, CLEVR_CAMERA_JITTER, CLEVR_LIGHT_JITTER = 0.25, 0.4, 0.5, 1.0


def test_gaps_margins_and_jitter_are_clevrs_numbers():
    """Each rule holds and binds: some gap, margin and jitter come close to CLEVR's number, so a
    constant made 10 times smaller (or larger) fails here."""
    gaps, margins, camera, lights = [], [], [], []
    for index in range(80):
        scene = layout.sample_layout(
            seed=1, index=index, attempt=0, properties=PROPERTIES, min_objects=10, max_objects=10
        )
        objects = scene["objects"]
        axes = [np.asarray(scene["directions"][name][:2]) for name in ("right", "behind")]
        for i, a in enumerate(objects):
            for b in objects[i + 1 :]:
                dx = np.subtract(a["3d_coords"][:2], b["3d_coords"][:2])
                gaps.append(np.hypot(*dx) - a["radius"] - b["radius"])
                margins.append(min(abs(float(dx @ axis)) for axis in axes))
        camera += [abs(j) for j in scene["camera"]["jitter"]]
        lights += [abs(j) for light in scene["lights"] for j in light["jitter"]]
    assert CLEVR_MIN_DIST <= min(gaps) < CLEVR_MIN_DIST + 0.05
    assert CLEVR_MARGIN <= min(margins) < CLEVR_MARGIN + 0.01
    assert 0.95 * CLEVR_CAMERA_JITTER < max(camera) <= CLEVR_CAMERA_JITTER
    assert 0.95 * CLEVR_LIGHT_JITTER < max(lights) <= CLEVR_LIGHT_JITTER
