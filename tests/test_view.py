"""`view`: the JSON API, image layers, IoU against `evaluate`, files only from the dataset root,
bad files and flags."""

import io
import socket
import sys
import time

import numpy as np
import pytest
from builders import shifted_predictions
from click.testing import CliRunner
from PIL import Image
from starlette.testclient import TestClient

from clevr_remv.cli import main
from clevr_remv.dataset.store import DatasetStore, write_json_atomic
from clevr_remv.geometry import view_name
from clevr_remv.res.evaluate import evaluate
from clevr_remv.view.catalog import Catalog
from clevr_remv.view.layers import INSTANCE_ALPHA, OUTLINE_RGBA, instance_colors, outline
from clevr_remv.view.scores import ViewerPredictions
from clevr_remv.view.server import create_app, served_hosts


def client_for(root, predictions=None):
    app = create_app(Catalog(root), ViewerPredictions(predictions) if predictions else None)
    return TestClient(app, base_url="http://localhost:8765")


def decoded(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        return np.asarray(image)


@pytest.fixture(scope="module")
def client(tiny_dataset):
    return client_for(tiny_dataset)


def test_scene_list_counts_objects_and_expressions(client, tiny_dataset):
    store = DatasetStore(tiny_dataset)
    listed = client.get("/api/scenes").json()
    assert [scene["index"] for scene in listed] == store.scene_ids()
    for scene in listed:
        assert scene["objects"] == len(store.load_scene(scene["index"])["objects"])
        assert scene["expressions"] == len(store.load_refexps(scene["index"])["expressions"])
        assert scene["error"] is None


def test_filter_by_expression_text(client, tiny_dataset):
    expression = DatasetStore(tiny_dataset).load_refexps(2)["expressions"][3]
    word = expression["text"].split()[-1].upper()  # any case
    listed = client.get("/api/scenes", params={"q": word}).json()
    assert 2 in [scene["index"] for scene in listed]
    for scene in listed:
        texts = {e["id"]: e["text"] for e in DatasetStore(tiny_dataset).load_refexps(scene["index"])["expressions"]}
        assert scene["matches"] == [id_ for id_, text in texts.items() if word.lower() in text.lower()]
    assert client.get("/api/scenes", params={"q": "no such words"}).json() == []


def test_scene_detail(client, tiny_dataset):
    store = DatasetStore(tiny_dataset)
    detail = client.get("/api/scenes/1").json()
    scene = store.load_scene(1)
    assert (detail["width"], detail["height"], detail["grid"], detail["center"]) == (48, 32, 3, [2, 2])
    assert detail["expressions"] == store.load_refexps(1)["expressions"]
    assert [(o["id"], o["shape"], o["color"]) for o in detail["objects"]] == [
        (k, o["shape"], o["color"]) for k, o in enumerate(scene["objects"], 1)
    ]
    assert [o["overlay"] for o in detail["objects"]] == instance_colors(len(scene["objects"]))
    assert [(view["u"], view["v"]) for view in detail["views"]] == store.views()
    assert detail["depth"] is False and detail["predictions"] is False
    assert client.get("/api/scenes/99").status_code == 404


def test_view_image_is_the_dataset_file(client, tiny_dataset):
    view = client.get("/api/scenes/0").json()["views"][5]
    response = client.get(view["rgb"])
    assert response.status_code == 200
    assert response.content == DatasetStore(tiny_dataset).rgb_path(0, view["u"], view["v"]).read_bytes()


def test_outline_and_instance_layers_match_the_index_mask(client, tiny_dataset):
    index = DatasetStore(tiny_dataset).read_index(0, 3, 1)
    layer = decoded(client.get("/api/scenes/0/views/3/1/outline.png", params={"object": 2}))
    assert layer.shape == (32, 48, 4)
    drawn = layer[..., 3] > 0
    assert drawn.any() and np.array_equal(drawn, outline(index == 2))
    assert (layer[drawn] == OUTLINE_RGBA).all()

    instances = decoded(client.get("/api/scenes/0/views/3/1/instances.png"))
    assert np.array_equal(instances[..., 3] > 0, index > 0)
    for k, color in enumerate(instance_colors(int(index.max())), 1):
        if (index == k).any():
            assert (instances[index == k] == [int(color[i : i + 2], 16) for i in (1, 3, 5)] + [INSTANCE_ALPHA]).all()
    assert client.get("/api/scenes/0/views/3/1/outline.png", params={"object": 99}).status_code == 404
    assert client.get("/api/scenes/0/views/3/1/outline.png", params={"object": "x"}).status_code == 422
    assert client.get("/api/scenes/0/views/4/1/instances.png").status_code == 404


def test_outline_is_the_mask_boundary():
    mask = np.zeros((7, 7), bool)
    mask[2:5, 2:5] = True
    ring = outline(mask)
    assert not ring[3, 3] and ring[2, 2] and ring[1, 3] and not ring[0, 0] and not ring[1, 1]
    assert ring.sum() == 8 + 12  # the 3x3 square's border inside and its 4-neighbours outside


UP = 16  # enough ``..`` to climb from any temporary folder to /


@pytest.mark.parametrize(
    "path",
    [
        "/data/" + "..%2f" * UP + "etc%2fpasswd",
        "/data/" + "%2e%2e/" * UP + "etc/passwd",
        "/data/scenes/" + "%2E%2E/" * UP + "etc/passwd",
        "/data/%2e%2e/",
        "/data//etc/passwd",
        "/data/%2Fetc%2Fpasswd",
        "/static/%2e%2e/server.py",
        "/data/scenes/000000/rgb/u9_v9.png",
    ],
)
def test_paths_outside_the_root_or_missing_get_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert b"root:" not in response.content and b"import" not in response.content


def test_a_symlink_out_of_the_root_is_refused(tiny_dataset_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (tiny_dataset_copy / "scenes" / "000000" / "leak.txt").symlink_to(secret)
    (tiny_dataset_copy / "inside.json").symlink_to(tiny_dataset_copy / "dataset.json")
    client = client_for(tiny_dataset_copy)
    assert client.get("/data/scenes/000000/leak.txt").status_code == 404
    assert client.get("/data/inside.json").json() == DatasetStore(tiny_dataset_copy).info()


def test_missing_and_corrupt_images_give_messages_and_the_server_keeps_running(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    store.rgb_path(1, 2, 2).unlink()
    store.index_path(1, 1, 1).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rgb = store.rgb_path(1, 3, 3)
    rgb.write_bytes(rgb.read_bytes()[:60])  # truncated
    client = client_for(tiny_dataset_copy)
    missing = client.get("/data/scenes/000001/rgb/u2_v2.png")
    assert missing.status_code == 404 and "u2_v2.png: missing" in missing.json()["error"]
    truncated = client.get("/data/scenes/000001/rgb/u3_v3.png")
    assert truncated.status_code == 422 and "u3_v3.png: cannot be read as an image" in truncated.json()["error"]
    corrupt = client.get("/api/scenes/1/views/1/1/instances.png")
    assert corrupt.status_code == 422 and "regenerate its scene" in corrupt.json()["error"]
    assert client.get("/api/scenes/1/views/2/1/instances.png").status_code == 200


def test_a_broken_scene_is_listed_with_its_error(tiny_dataset_copy):
    DatasetStore(tiny_dataset_copy).refexps_path(4).write_text("{not json")
    client = client_for(tiny_dataset_copy)
    broken = [scene for scene in client.get("/api/scenes").json() if scene["index"] == 4][0]
    assert "not valid JSON" in broken["error"]
    assert client.get("/api/scenes/4").status_code == 422
    assert client.get("/api/scenes/3").status_code == 200


@pytest.fixture
def one_expression(tiny_dataset_copy):
    """The tiny dataset with a test split of scene 2 alone, keeping only its expression 1, so that
    `evaluate`'s per-view figures are that expression's IoU in each view."""
    store = DatasetStore(tiny_dataset_copy)
    refexps = store.load_refexps(2)
    refexps["expressions"] = [e for e in refexps["expressions"] if e["id"] == 1]
    write_json_atomic(store.refexps_path(2), refexps, "refexps")
    splits = store.load_splits()
    splits["splits"] = {"train": [0, 1, 3, 4, 5], "test": [2]}
    write_json_atomic(store.splits_path, splits, "splits")
    return store, refexps["expressions"][0]


def test_predictions_and_per_view_iou_equal_evaluate(one_expression, tmp_path):
    store, expression = one_expression
    predictions = shifted_predictions(store.root, tmp_path / "p.jsonl", scenes=[2])
    lines = predictions.read_text().splitlines()
    predictions.write_text("\n".join(line for line in lines if '"view": [3, 3]' not in line) + "\n")  # one missing
    results = evaluate(store.root, predictions, views="all", out=tmp_path / "out", progress=False)
    client = client_for(store.root, predictions)
    scores = client.get("/api/scenes/2/expressions/1/scores").json()

    assert [(view["u"], view["v"]) for view in scores["views"]] == [tuple(view) for view in expression["views"]]
    for view in scores["views"]:
        reported = results["per_view"][view_name(view["u"], view["v"])]
        assert view["iou"] == reported["oIoU"] == reported["mIoU"]
        assert view["missing"] == ((view["u"], view["v"]) == (3, 3))
    assert {view["iou"] for view in scores["views"] if view["u"] == 2} == {100.0}
    assert any(0 < view["iou"] < 100 for view in scores["views"])
    assert scores["mIoU"] == results["overall"]["mIoU"] and scores["oIoU"] == results["overall"]["oIoU"]

    shifted = np.roll(store.read_index(2, 1, 1) == expression["referent"], 1, 1)
    layer = decoded(client.get("/api/scenes/2/expressions/1/views/1/1/prediction.png"))
    assert np.array_equal(layer[..., 3] > 0, shifted)
    assert client.get("/api/scenes/2/expressions/1/views/3/3/prediction.png").status_code == 404
    assert client.get("/api/scenes/2/expressions/9/scores").status_code == 404


def test_png_folder_predictions_score_the_same(one_expression, tmp_path):
    store, expression = one_expression
    folder = tmp_path / "masks"
    for u, v in expression["views"]:
        path = folder / "000002" / "1" / f"{view_name(u, v)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.roll(store.read_index(2, u, v) == expression["referent"], u - 2, 1)).save(path)
    from_folder = client_for(store.root, folder).get("/api/scenes/2/expressions/1/scores").json()
    results = evaluate(store.root, folder, views="all", out=tmp_path / "out", progress=False)
    assert [view["iou"] for view in from_folder["views"]] == [
        results["per_view"][view_name(*view)]["oIoU"] for view in expression["views"]
    ]
    assert client_for(store.root).get("/api/scenes/2/expressions/1/scores").status_code == 404


def test_depth_toggle_only_with_depth_files(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    assert client_for(tiny_dataset_copy).get("/api/scenes/0").json()["depth"] is False
    depth = np.tile(np.arange(1000, 1000 + 48 * 100, 100, dtype=np.uint16), (32, 1))  # far to the right
    depth[0, 0] = 0  # no depth
    for u, v in store.views():
        path = store.scene_dir(0) / "depth" / f"{view_name(u, v)}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(depth).save(path)
    client = client_for(tiny_dataset_copy)
    detail = client.get("/api/scenes/0").json()
    assert detail["depth"] is True and detail["views"][0]["depth"] == "/data/scenes/000000/depth/u1_v1.png"
    assert client.get("/api/scenes/1").json()["depth"] is False
    shown = decoded(client.get("/api/scenes/0/views/2/2/depth.png"))
    assert shown.shape == (32, 48, 3)
    brightness = shown[1].astype(int).sum(axis=-1)
    assert (np.diff(brightness) <= 0).all() and brightness[0] > brightness[-1] > 0  # near is bright
    assert (shown[0, 0] == 0).all()
    assert client.get("/api/scenes/1/views/2/2/depth.png").status_code == 404


def test_view_help_and_missing_packages(tiny_dataset, monkeypatch):
    runner = CliRunner()
    help_text = runner.invoke(main, ["view", "--help"]).output
    for flag in ("--data", "--predictions", "--port", "--host", "--no-browser"):
        assert flag in help_text
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = runner.invoke(main, ["view", "--data", str(tiny_dataset), "--no-browser"])
    assert result.exit_code == 2 and "pip install clevr-remv[view]" in result.output


def test_bad_dataset_predictions_and_busy_port_are_refused(tiny_dataset, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["view", "--data", str(tmp_path), "--no-browser"])
    assert result.exit_code == 2 and "not a CLEVR-REMV dataset" in result.output
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"scene": 0}\n')
    result = runner.invoke(main, ["view", "--data", str(tiny_dataset), "--predictions", str(bad), "--no-browser"])
    assert result.exit_code == 2 and f"{bad}:1" in result.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(main, ["view", "--data", str(tiny_dataset), "--port", str(port), "--no-browser"])
    assert result.exit_code == 2 and f"--port {port}: already in use" in result.output


def test_view_serves_on_the_chosen_port_and_opens_the_browser(tiny_dataset, monkeypatch):
    import uvicorn

    served, opened = [], []
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: served.append(sockets[0].getsockname()))
    monkeypatch.setattr("webbrowser.open", opened.append)
    result = CliRunner().invoke(main, ["view", "--data", str(tiny_dataset), "--port", "0"])
    assert result.exit_code == 0, result.output
    host, port = served[0]
    assert host == "127.0.0.1" and port > 0
    assert f"at http://127.0.0.1:{port}/" in result.output and "6 scenes" in result.output
    for _ in range(100):  # the browser is opened from a thread
        if opened:
            break
        time.sleep(0.05)
    assert opened == [f"http://127.0.0.1:{port}/"]


@pytest.mark.parametrize(
    "host, port, header, status",
    [
        ("127.0.0.1", 8765, "127.0.0.1:8765", 200),
        ("127.0.0.1", 8765, "localhost:8765", 200),
        ("127.0.0.1", 8765, "LOCALHOST:8765", 200),
        ("127.0.0.1", 8765, "[::1]:8765", 200),
        ("127.0.0.1", 8765, "evil.example:8765", 400),  # a rebinding page's own name
        ("127.0.0.1", 8765, "evil.example", 400),
        ("127.0.0.1", 8765, "127.0.0.1:9999", 400),
        ("127.0.0.1", 8765, "127.0.0.1", 400),
        ("127.0.0.1", 8765, "", 400),
        ("127.0.0.1", 80, "localhost", 200),
        ("10.1.2.3", 8000, "10.1.2.3:8000", 200),
        ("::1", 8000, "[::1]:8000", 200),
    ],
)
def test_only_requests_naming_the_viewer_are_answered(tiny_dataset, host, port, header, status):
    """DNS rebinding: a page on evil.example that resolves its name to 127.0.0.1 sends Host:
    evil.example; the viewer must not answer it (least of all /api/info, which holds a path)."""
    client = TestClient(create_app(Catalog(tiny_dataset), None, served_hosts(host, port)))
    for path in ("/api/info", "/", "/api/scenes", "/data/dataset.json", "/api/scenes/1/views/1/1/instances.png"):
        response = client.get(path, headers={"host": header})
        assert response.status_code == status, (path, header, response.text)
        if status == 400:
            assert str(tiny_dataset) not in response.text and "not a name this viewer serves" in response.text


def test_without_a_host_list_only_loopback_names_are_answered(tiny_dataset):
    client = TestClient(create_app(Catalog(tiny_dataset)))
    assert client.get("/api/info", headers={"host": "localhost:1234"}).status_code == 200
    assert client.get("/api/info", headers={"host": "testserver"}).status_code == 400


def test_the_command_serves_the_names_of_its_host_and_port(tiny_dataset, monkeypatch):
    import uvicorn

    apps = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda server, sockets: apps.append((server.config.app, sockets[0].getsockname()[1]))
    )
    result = CliRunner().invoke(main, ["view", "--data", str(tiny_dataset), "--port", "0", "--no-browser"])
    assert result.exit_code == 0, result.output
    app, port = apps[0]
    client = TestClient(app)
    assert client.get("/api/info", headers={"host": f"127.0.0.1:{port}"}).status_code == 200
    assert client.get("/api/info", headers={"host": f"rebound.example:{port}"}).status_code == 400


def test_a_json_file_that_is_not_utf8_is_a_message_not_a_traceback(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    store.scene_json_path(2).write_bytes(b'{"index": "\xff"}')
    client = client_for(tiny_dataset_copy)  # starts: the broken scene keeps its error
    broken = [scene for scene in client.get("/api/scenes").json() if scene["index"] == 2][0]
    assert "not UTF-8 text" in broken["error"]
    store.dataset_json_path.write_bytes(b"\xfe\xff{}")
    result = CliRunner().invoke(main, ["view", "--data", str(tiny_dataset_copy), "--no-browser"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{store.dataset_json_path}: not UTF-8 text" in result.output
