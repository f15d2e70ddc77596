"""Shared fixtures: a tiny synthetic CLEVR-REMV dataset in the real on-disk format, a tiny
local text encoder, and one torch thread."""

import contextlib
import shutil
import sys

import pytest

# mlcroissant logs through absl, whose handler keeps the sys.stderr of the moment absl is imported
# (here pytest's capture stream) and closes it in logging.shutdown() unless it is the sys.stderr of
# that moment. uvicorn's logging set-up (`clevr-remv view` inside a CliRunner, which swaps
# sys.stderr) runs that shutdown: pytest's stream closed, the session crashed ("lost sys.stderr").
# Give the handler the process's own stderr, which it never closes.
with contextlib.suppress(ImportError):
    import absl.logging

    absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

from clevr_remv.dataset.splits import write_splits
from clevr_remv.generate.synthetic import write_synthetic_dataset

TINY_SCENES = 6
TINY_GRID = 3
TINY_WIDTH, TINY_HEIGHT = 48, 32
TINY_RATIOS = "0.5,0.25,0.25"  # 6 scenes -> 3 / 2 / 1 by largest remainder


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Root (Path) of a 6-scene, 3x3-view, 48x32 synthetic dataset with splits.json
    (train 3 / val 2 / test 1 scenes, seed 0). Shared by the whole session: treat it as
    read-only and use ``tiny_dataset_copy`` to modify files."""
    root = tmp_path_factory.mktemp("tiny") / "dataset"
    write_synthetic_dataset(root, scenes=TINY_SCENES, grid=TINY_GRID, width=TINY_WIDTH, height=TINY_HEIGHT, seed=0)
    write_splits(root, TINY_RATIOS, seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_generalized_dataset(tiny_dataset, tmp_path_factory):
    """A copy of ``tiny_dataset`` whose expressions were remade with `clevr-remv refexps
    --expressions generalized` (no-target, single- and multi-target ones; read-only)."""
    from click.testing import CliRunner

    from clevr_remv.cli import main

    root = shutil.copytree(tiny_dataset, tmp_path_factory.mktemp("generalized") / "dataset")
    result = CliRunner().invoke(
        main, ["refexps", "--data", str(root), "--expressions", "generalized", "--per-scene", "10"]
    )
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def tiny_dataset_copy(tiny_dataset, tmp_path):
    """A private, writable copy of ``tiny_dataset`` (for corruption and rewrite tests)."""
    return shutil.copytree(tiny_dataset, tmp_path / "dataset")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch with one thread while a module's tests run: the test machine's two cores are
    shared, and one thread is fastest there for tiny models."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_text_encoder(tmp_path_factory):
    """Folder of a 1-layer, 32-wide random BERT with the MiniLM tokenizer, saved like any local model."""
    import torch
    import transformers

    from clevr_remv.res.models.text import default_text_encoder_path

    source = default_text_encoder_path()
    folder = tmp_path_factory.mktemp("text") / "tiny-bert"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(f"{source}/{name}", folder / name)
    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def live_viewer():
    """``start(data, predictions=None) -> URL``: the viewer served by uvicorn on a free local
    port in a background thread, stopped when the test ends."""
    import threading

    import uvicorn

    from clevr_remv.view.catalog import Catalog
    from clevr_remv.view.scores import ViewerPredictions
    from clevr_remv.view.server import create_app, listen, page_url, served_hosts

    running = []

    def start(data, predictions=None):
        sock = listen("127.0.0.1", 0)
        app = create_app(
            Catalog(data),
            ViewerPredictions(predictions) if predictions else None,
            served_hosts("127.0.0.1", sock.getsockname()[1]),
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread, sock))
        return page_url(sock)

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def tiny_depth_dataset(tmp_path_factory):
    """Root (Path) of a 2-scene, 3x3-view, 48x32 synthetic dataset with the depth pass and the
    convergent rig (no splits.json). Read-only, like ``tiny_dataset``."""
    root = tmp_path_factory.mktemp("tiny_depth") / "dataset"
    write_synthetic_dataset(
        root,
        scenes=2,
        grid=TINY_GRID,
        width=TINY_WIDTH,
        height=TINY_HEIGHT,
        seed=0,
        rig="convergent",
        passes=("depth",),
    )
    return root
