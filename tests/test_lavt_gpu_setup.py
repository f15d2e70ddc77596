"""benchmarks/lavt_gpu.py labels what a run used: the text encoder (BERT-base or not) and the vision weights."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lavt_gpu.py"


@pytest.fixture(scope="module")
def lavt_gpu():
    spec = importlib.util.spec_from_file_location("lavt_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bert_folder(root, **config):
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config))
    return root


def test_a_bert_base_checkpoint_is_labelled_as_the_papers_encoder(lavt_gpu, tmp_path):
    folder = bert_folder(
        tmp_path / "bert-base-uncased",
        model_type="bert",
        num_hidden_layers=12,
        hidden_size=768,
        num_attention_heads=12,
        _name_or_path="bert-base-uncased",
    )
    described = lavt_gpu.describe_text_encoder(folder)
    assert described["bert_base"] and described["path"] == str(folder.resolve())
    assert described["label"] == "bert-base-uncased (bert, 12 layers, 768 wide): BERT-base, as in the paper"


def test_minilm_and_small_berts_are_labelled_not_bert_base(lavt_gpu, tiny_text_encoder):
    from clevr_remv.res.models.text import default_text_encoder_path

    for folder in (default_text_encoder_path(), tiny_text_encoder):
        described = lavt_gpu.describe_text_encoder(folder)
        assert not described["bert_base"] and described["label"].endswith("not BERT-base, which the paper used")
    assert "6 layers, 384 wide" in lavt_gpu.describe_text_encoder(default_text_encoder_path())["label"]


def test_a_folder_without_config_is_refused(lavt_gpu, tmp_path):
    with pytest.raises(SystemExit, match="no config.json there"):
        lavt_gpu.describe_text_encoder(tmp_path)


def test_write_setup_labels_the_reports_and_replaces_its_section(lavt_gpu, tmp_path):
    folder = bert_folder(
        tmp_path / "enc", model_type="bert", num_hidden_layers=12, hidden_size=768, num_attention_heads=12
    )
    (tmp_path / "swin.pth").write_bytes(b"0" * 2048)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.md").write_text("# Results\n\n| a | b |\n")
    (out / "vision_weights.json").write_text(json.dumps({"loaded": 329, "missing": [], "unexpected": ["head.weight"]}))
    setup = {
        "text_encoder": lavt_gpu.describe_text_encoder(folder),
        "vision_weights": lavt_gpu.describe_vision_weights(tmp_path / "swin.pth"),
        "settings": {"size": "base", "epochs": "1"},
    }
    for _ in range(2):
        lavt_gpu.write_setup(out, setup)
    results = (out / "results.md").read_text()
    assert results.startswith("# Results\n\n| a | b |\n\n## What this run used") and results.count("## What") == 1
    assert f"- text encoder: enc (bert, 12 layers, 768 wide): BERT-base, as in the paper; {folder.resolve()}" in results
    assert "- vision weights load: 329 tensors loaded, 0 missing, 1 unexpected" in results
    written = json.loads((out / "setup.json").read_text())
    assert written["vision_weights"]["path"] == str((tmp_path / "swin.pth").resolve())
