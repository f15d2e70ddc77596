"""The RES models on the CNN encoder (baseline, cmsa, lavt-cnn): forward, a training step, the
pretrained encoder loaded by each, the frozen stem, the feature cache and its augmentation."""

import json

import pytest
import torch
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.pytorch import ClevrRemvDataset
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.res.benchmark import run_benchmark
from clevr_remv.res.feature_cache import CachedSamples, cache_views
from clevr_remv.res.models.augment import translate
from clevr_remv.res.models.cnn import read_encoder_file
from clevr_remv.res.models.registry import get_model
from clevr_remv.res.models.training import collate, forward_batch, segmentation_loss
from clevr_remv.res.pretrain import run_pretrain

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILIES = ("baseline", "cmsa", "lavt-cnn")
TEXTS = ["the red cube left of the small sphere", "the big metal thing", "the second cylinder from the left"]


@pytest.fixture(scope="module")
def encoder_file(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "p"
    run_pretrain(tiny_dataset, out, epochs=1, batch_size=2)
    return out / "encoder.pt"


def build(name: str, encoder_file=None, recipe: str = "frozen-stem-attributes"):
    """(module, config, model, tokenizer) of family ``name`` with ``recipe``'s overrides, loaded from
    ``encoder_file`` when given."""
    module = get_model(name)
    config = {**module.default_config("tiny"), **module.RECIPES[recipe]}
    if config.get("attribute_maps"):
        config["attribute_classes"] = read_encoder_file(encoder_file)["config"]["attributes"]
    config = module.prepare_config(config, TEXTS)
    model = module.build_model(config)
    if encoder_file is not None:
        module.load_vision_weights(model, encoder_file)
    return module, config, model, module.build_tokenizer(config)


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_loads_the_pretrained_encoder_and_trains_all_but_the_frozen_stem(name, encoder_file):
    module, config, model, tokenizer = build(name, encoder_file)
    pretrained = read_encoder_file(encoder_file)
    report = module.load_vision_weights(model, encoder_file)
    assert report["missing"] == [] and report["loaded"] > len(pretrained["encoder"])
    for key, value in pretrained["encoder"].items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    assert config["attention"] == module.ATTENTION
    images = torch.rand(3, 3, 32, 48)
    tokens, token_mask = tokenizer(TEXTS)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    logits = model(images, tokens, token_mask)
    assert logits.shape == (3, 2, 32, 48)
    loss = segmentation_loss(logits, torch.rand(3, 32, 48) > 0.7, [0.9, 1.1], 1.0)
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    frozen = [key for key in before if key.startswith(("encoder.0.", "encoder.1.", "attribute_branch."))]
    trained = [key for key in before if key.startswith("encoder.3.") and key.endswith("weight")]
    assert frozen and all(torch.equal(before[key], after[key]) for key in frozen)  # BN statistics too
    assert trained and all(not torch.equal(before[key], after[key]) for key in trained)


def test_parameter_counts_are_within_a_quarter_of_each_other(encoder_file):
    counts = {}
    for name in FAMILIES:
        *_, model, _ = build(name, encoder_file)
        counts[name] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert max(counts.values()) <= 1.25 * min(counts.values()), counts


def test_cached_features_are_the_stem_of_the_view_mirrored_and_shifted_exactly(tiny_dataset, encoder_file, tmp_path):
    *_, model, _ = build("cmsa", encoder_file)
    model.eval()
    store = DatasetStore(tiny_dataset)
    samples = ClevrRemvDataset(tiny_dataset, split="train", views="center")
    keys = sorted({(samples.describe(i)["scene"], samples.describe(i)["view"]) for i in range(len(samples))})
    features = cache_views(model, store, keys, None, mirrored=True, root=tmp_path)
    assert cache_views(model, store, keys, None, mirrored=True, root=tmp_path).folder == features.folder
    item = samples[0]
    with torch.no_grad():
        stem = model.stem(item["image"][None])
        mirrored = model.stem(item["image"].flip(-1)[None])
        attributes = model.attributes(stem)
    cached = features.sample(item["scene"], item["view"])
    assert torch.allclose(cached["stem"], stem[0], atol=1e-5)
    assert torch.allclose(cached["attributes"], attributes[0], atol=1e-5)
    assert torch.allclose(features.sample(item["scene"], item["view"], flipped=True)["stem"], mirrored[0], atol=1e-5)
    # A shift of 8 pixels is two cells of the stride-4 stem: exact away from the borders.
    with torch.no_grad():
        shifted = model.stem(translate(item["image"], 8, 0, 8)[None])[0]  # 8 pixels to the right
    moved = translate(cached["stem"], 2, 0, 2)
    assert torch.allclose(moved[:, :, 5:-2], shifted[:, :, 5:-2], atol=1e-4)  # the stem sees 2-3 cells around
    torch.manual_seed(0)
    augmented = CachedSamples(samples, features, augment=True)
    texts = {augmented[0]["text"] for _ in range(20)}
    assert texts == {item["text"], item["text"].replace("left", "@").replace("right", "left").replace("@", "right")}


def test_cached_and_image_batches_give_the_same_loss(tiny_dataset, encoder_file, tmp_path):
    *_, model, tokenizer = build("lavt-cnn", encoder_file)
    model.eval()
    samples = ClevrRemvDataset(tiny_dataset, split="val", views="center")
    keys = [(samples.describe(i)["scene"], samples.describe(i)["view"]) for i in range(len(samples))]
    features = cache_views(model, DatasetStore(tiny_dataset), sorted(set(keys)), None, False, tmp_path)
    cached = collate([CachedSamples(samples, features)[i] for i in range(4)])
    images = collate([samples[i] for i in range(4)])
    losses = [
        segmentation_loss(forward_batch(model, batch, tokenizer, None, "cpu"), batch["mask"], [0.9, 1.1], 1.0)
        for batch in (cached, images)
    ]
    assert torch.equal(cached["mask"], images["mask"])
    assert losses[0].item() == pytest.approx(losses[1].item(), abs=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_benchmark_trains_each_family_from_the_cache_and_reports_its_attention(
    name, tiny_dataset, encoder_file, tmp_path
):
    results = run_benchmark(
        tiny_dataset,
        name,
        tmp_path / "run",
        epochs=1,
        batch_size=4,
        recipe="frozen-stem-attributes",
        vision_weights=encoder_file,
        feature_cache=tmp_path / "cache",
    )
    assert len(list((tmp_path / "cache").iterdir())) == 3  # train (with mirrored views), val, test
    assert results["benchmark"]["attention"] == get_model(name).ATTENTION
    assert results["benchmark"]["a_num"] == sum(get_model(name).ATTENTION.values())
    assert f"A-Num {results['benchmark']['a_num']}" in (tmp_path / "run" / "results.md").read_text()
    report = json.loads((tmp_path / "run" / "vision_weights.json").read_text())
    assert report["missing"] == [] and report["loaded"] > 0


def test_a_frozen_stem_without_pretrained_weights_is_refused(tiny_dataset, tmp_path):
    result = CliRunner().invoke(
        main,
        ["benchmark", "--model", "cmsa", "--data", str(tiny_dataset), "--out", str(tmp_path / "b")]
        + ["--recipe", "frozen-stem", "--workers", "0"],
    )
    assert result.exit_code == 2 and "needs --vision-weights" in result.output
    assert not (tmp_path / "b").exists()


def test_a_swin_checkpoint_is_not_a_pretrain_encoder(tiny_dataset, tmp_path):
    torch.save({"layers.0.blocks.0.norm1.weight": torch.ones(3)}, tmp_path / "swin.pth")
    result = CliRunner().invoke(
        main,
        ["benchmark", "--model", "lavt-cnn", "--data", str(tiny_dataset), "--out", str(tmp_path / "b")]
        + ["--vision-weights", str(tmp_path / "swin.pth"), "--workers", "0", "--epochs", "1"],
    )
    assert result.exit_code == 2 and "clevr-remv pretrain" in result.output
