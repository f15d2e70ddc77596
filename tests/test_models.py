"""RES models: registry, forward shapes, LAVT parts, tiny training runs, Swin weight loading."""

import shutil

import pytest
import torch
from builders import TINY_LAVT
from safetensors.torch import load_file, save_file

from clevr_remv.dataset.vocab import Vocabulary
from clevr_remv.errors import ClevrRemvError
from clevr_remv.res.models import baseline, lavt
from clevr_remv.res.models.registry import get_model, model_names
from clevr_remv.res.models.swin import SwinBlock, shifted_window_mask
from clevr_remv.res.models.text import WordTokenizer, default_text_encoder_path, load_text_encoder, train_first_layers
from clevr_remv.res.models.training import make_optimizer, make_poly_schedule, segmentation_loss
from clevr_remv.res.models.vision_weights import load_swin_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEIGHT, WIDTH = 32, 48


def lavt_config(text_encoder, **changes):
    return lavt.prepare_config(
        {**lavt.default_config("tiny"), **TINY_LAVT, **changes, "text_encoder": str(text_encoder)}, []
    )


def two_square_batch():
    """Four 32x48 images, each with a red and a blue square; the text names one of them."""
    images = torch.full((4, 3, HEIGHT, WIDTH), 0.5)
    masks = torch.zeros(4, HEIGHT, WIDTH, dtype=torch.bool)
    texts = []
    for i in range(4):
        red_left = i % 2 == 0
        for channel, left in ((0, red_left), (2, not red_left)):
            x0 = 4 if left else 28
            images[i, :, 8:24, x0 : x0 + 16] = 0.0
            images[i, channel, 8:24, x0 : x0 + 16] = 1.0
        wants_red = i < 2
        texts.append("the red square" if wants_red else "the blue square")
        x0 = 4 if wants_red == red_left else 28
        masks[i, 8:24, x0 : x0 + 16] = True
    return images, masks, texts


def train_steps(model, tokenizer, steps, lr):
    """Losses of ``steps`` AdamW steps on the two-square batch."""
    images, masks, texts = two_square_batch()
    tokens, token_mask = tokenizer(texts)
    optimizer = make_optimizer(model, lr)
    scheduler = make_poly_schedule(optimizer, steps)
    losses = []
    for _ in range(steps):
        loss = segmentation_loss(model(images, tokens, token_mask), masks, [0.9, 1.1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


# ------------------------------------------------------------------ registry and tokenizers


def test_registry_lists_and_resolves_models():
    assert model_names() == ["baseline", "cmsa", "lavt", "lavt-cnn"]
    assert get_model("lavt") is lavt
    with pytest.raises(ClevrRemvError, match="unknown model 'unet'.*baseline, cmsa, lavt, lavt-cnn"):
        get_model("unet")


@pytest.mark.parametrize("module", [baseline, lavt, get_model("cmsa"), get_model("lavt-cnn")])
def test_registered_modules_follow_the_protocol(module):
    for name in ("DEFAULT_LR", "ATTENTION", "default_config", "prepare_config", "build_model", "build_tokenizer"):
        assert hasattr(module, name), name
    for size in ("tiny", "small", "base"):
        config = module.default_config(size)
        assert config["max_tokens"] == 20 and config["class_weights"] == [0.9, 1.1]
    with pytest.raises(ValueError):
        module.default_config("huge")


def test_word_vocabulary_and_tokenizer():
    vocabulary = Vocabulary.build(["The red cube.", "the blue cube"]).words
    assert vocabulary[:3] == ["<pad>", "<unk>", "cube"] and "the" in vocabulary
    tokenizer = WordTokenizer(vocabulary, max_tokens=4)
    tokens, mask = tokenizer(["The red sphere, left of the cube", ""])
    assert tokens.shape == (2, 4) and tokens.dtype == torch.long
    assert tokens[0, 2].item() == vocabulary.index("<unk>")  # "sphere" is unknown
    assert mask.tolist() == [[1, 1, 1, 1], [0, 0, 0, 0]]


def test_lavt_tokenizer_pads_to_20_tokens(tiny_text_encoder):
    tokens, mask = lavt.build_tokenizer(lavt_config(tiny_text_encoder))(["the red cube", "a " * 40])
    assert tokens.shape == (2, 20)
    assert mask[0].tolist() == [1] * 5 + [0] * 15  # [CLS] the red cube [SEP]
    assert mask[1].sum().item() == 20


def _encoder_without(source, destination, drop):
    """A copy of the text encoder folder ``source`` whose weight file lacks the tensors named by ``drop``."""
    shutil.copytree(source, destination)
    weights = destination / "model.safetensors"
    tensors = load_file(str(weights))
    save_file(
        {key: value for key, value in tensors.items() if not drop(key)} | {"extra.weight": torch.zeros(1)}, str(weights)
    )
    return destination


def test_text_encoder_load_report(tiny_text_encoder, tmp_path):
    model = lavt.build_model(lavt_config(tiny_text_encoder))
    complete = model.text_encoder_report
    assert complete["missing"] == complete["unexpected"] == complete["shape_mismatch"] == []
    assert complete["loaded"] == len(model.text_encoder.state_dict()) > 0
    partial = _encoder_without(tiny_text_encoder, tmp_path / "partial", lambda key: "LayerNorm" in key)
    report = lavt.build_model(lavt_config(partial)).text_encoder_report
    assert report["missing"] and all("LayerNorm" in key for key in report["missing"])
    assert report["loaded"] == complete["loaded"] - len(report["missing"])
    assert report["unexpected"] == ["extra.weight"]


def test_a_text_encoder_missing_most_weights_is_refused(tiny_text_encoder, tmp_path):
    gutted = _encoder_without(tiny_text_encoder, tmp_path / "gutted", lambda key: "encoder.layer" in key)
    with pytest.raises(ClevrRemvError, match=f"--text-encoder {gutted}: only \\d+ of the encoder's \\d+ tensors"):
        lavt.build_model(lavt_config(gutted))


def test_decoder_is_half_as_wide_as_the_last_swin_stage():
    assert [lavt.default_config(size)["decoder_dim"] for size in ("tiny", "small", "base")] == [384, 384, 512]


def test_missing_text_encoder_folder(tmp_path):
    with pytest.raises(ClevrRemvError, match="--text-encoder .*config.json"):
        lavt.build_tokenizer(lavt_config(tmp_path))


# ------------------------------------------------------------------ forward shapes


@pytest.mark.parametrize("height,width", [(HEIGHT, WIDTH), (30, 45)])
def test_baseline_forward_shape(height, width):
    config = baseline.prepare_config(baseline.default_config("tiny"), ["the red cube", "a blue ball"])
    model, tokenizer = baseline.build_model(config), baseline.build_tokenizer(config)
    tokens, mask = tokenizer(["the red cube", "the ball left of the cube"])
    logits = model(torch.rand(2, 3, height, width), tokens, mask)
    assert logits.shape == (2, 2, height, width)


def test_baseline_needs_its_vocabulary():
    with pytest.raises(ValueError, match="vocabulary"):
        baseline.build_model(baseline.default_config("tiny"))


def test_baseline_spatial_coordinates():
    coordinates = baseline.spatial_coordinates(2, 4)
    assert coordinates.shape == (8, 2, 4)
    assert coordinates[0, 0].tolist() == [-1.0, -0.5, 0.0, 0.5]  # x_min along x
    assert coordinates[1, :, 0].tolist() == [-1.0, 0.0]  # y_min along y
    assert coordinates[4, 1].tolist() == pytest.approx([-0.75, -0.25, 0.25, 0.75])
    assert torch.all(coordinates[6] == 0.25) and torch.all(coordinates[7] == 0.5)


def _head_reach(config, source=(3, 3), target=(3, 10)) -> float:
    """How much the head's logits at cell ``target`` move when its input at ``source`` changes."""
    model = baseline.build_model(config).eval()
    fused = torch.zeros(1, model.head[0].in_channels, 14, 20)
    changed = fused.clone()
    changed[0, :, source[0], source[1]] = 5.0
    with torch.no_grad():
        return float((model.head(changed) - model.head(fused))[0, :, target[0], target[1]].abs().max())


def test_baseline_context_head_sees_a_neighbourhood():
    config = baseline.prepare_config(baseline.default_config("tiny"), ["the red cube"])
    assert config["context_dilations"] == [1, 2, 4]
    torch.manual_seed(0)
    assert _head_reach(config) > 1e-4  # 7 cells apart: within the 15x15 view
    assert _head_reach(config, target=(3, 11)) == 0.0  # 8 cells apart: beyond it
    assert _head_reach({**config, "context_dilations": []}) == 0.0  # Hu et al.'s pointwise head


def test_baseline_checkpoint_without_the_new_keys_is_hu_et_al_model():
    config = baseline.prepare_config(baseline.default_config("tiny"), ["the red cube"])
    assert config["fusion"] == "product"
    old = {key: value for key, value in config.items() if key not in ("fusion", "context_dilations")}
    state = baseline.build_model({**config, "fusion": "concat", "context_dilations": []}).state_dict()
    model = baseline.build_model(old)
    model.load_state_dict(state)  # strict: same tensors, same shapes
    assert [type(layer).__name__ for layer in model.head] == ["Conv2d", "ReLU", "Conv2d"]
    assert not hasattr(model, "language")


@pytest.mark.parametrize("fusion", ["product", "concat"])
def test_baseline_sentence_vector_ignores_padding(fusion):
    config = baseline.prepare_config({**baseline.default_config("tiny"), "fusion": fusion}, ["the red cube"])
    torch.manual_seed(0)
    model, tokenizer = baseline.build_model(config).eval(), baseline.build_tokenizer(config)
    tokens, mask = tokenizer(["the red cube"])
    cut = slice(0, int(mask.sum()))
    with torch.no_grad():
        padded = model.sentence_vector(tokens, mask)
        alone = model.sentence_vector(tokens[:, cut], mask[:, cut])
        other = model.sentence_vector(*tokenizer(["the cube"]))
    assert torch.allclose(padded, alone, atol=1e-6) and not torch.allclose(padded, other, atol=1e-3)


def test_baseline_rejects_an_unknown_fusion():
    config = baseline.prepare_config({**baseline.default_config("tiny"), "fusion": "sum"}, ["the red cube"])
    with pytest.raises(ValueError, match="fusion"):
        baseline.build_model(config)


@pytest.mark.parametrize("height,width", [(HEIGHT, WIDTH), (36, 52)])
def test_lavt_forward_shape(tiny_text_encoder, height, width):
    config = lavt_config(tiny_text_encoder)
    model, tokenizer = lavt.build_model(config), lavt.build_tokenizer(config)
    tokens, mask = tokenizer(["the red cube", "the small ball left of the large cube"])
    image = torch.rand(2, 3, height, width)
    logits = model(image, tokens, mask)
    assert logits.shape == (2, 2, height, width)
    features = model.backbone(image, model.text_encoder(input_ids=tokens, attention_mask=mask).last_hidden_state, mask)
    strides = [4, 8, 16, 32]
    assert [f.shape[1] for f in features] == [16, 32, 64, 128]
    assert [f.shape[2] for f in features] == [-(-height // s) for s in strides]


def test_lavt_sizes_follow_swin():
    assert lavt.default_config("tiny")["depths"] == [2, 2, 6, 2]
    assert lavt.default_config("small")["depths"] == [2, 2, 18, 2]
    base = lavt.default_config("base")
    assert (base["embed_dim"], base["heads"], base["window"]) == (128, [4, 8, 16, 32], 12)


def test_pwam_ignores_padding_words(tiny_text_encoder):
    model = lavt.build_model(lavt_config(tiny_text_encoder)).eval()
    fusion = model.backbone.layers[0].fusion
    pixels = torch.rand(1, 12, 16)
    words = torch.rand(1, 5, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    changed = words.clone()
    changed[0, 3:] = torch.rand(2, 32)  # only padded words differ
    assert torch.allclose(fusion(pixels, words, mask), fusion(pixels, changed, mask), atol=1e-6)
    changed[0, 0] += 1.0  # a real word differs
    assert not torch.allclose(fusion(pixels, words, mask), fusion(pixels, changed, mask), atol=1e-6)


def test_language_gates_take_the_reference_init_both_layers_truncated_normal(tiny_text_encoder):
    torch.manual_seed(0)
    model = lavt.build_model(lavt_config(tiny_text_encoder))
    gates = [layer.gate for layer in model.backbone.layers if layer.gate is not None]
    assert len(gates) == 3  # one per stage feeding the next
    for gate in gates:
        for linear in (gate.gate[0], gate.gate[2]):
            assert 0.015 < linear.weight.std().item() < 0.025 and linear.weight.abs().max() < 0.1
    fused = torch.rand(2, 10, 16)
    assert 0 < gates[0](fused).abs().max() < 0.05  # open, but only slightly


def test_zero_gate_recipe_starts_closed_and_opens_with_training(tiny_text_encoder):
    torch.manual_seed(0)
    config = lavt_config(tiny_text_encoder, **lavt.RECIPES["zero-gate"])
    model = lavt.build_model(config)
    gates = [layer.gate for layer in model.backbone.layers if layer.gate is not None]
    assert torch.count_nonzero(gates[0](torch.rand(2, 10, 16))) == 0
    train_steps(model, lavt.build_tokenizer(config), steps=2, lr=1e-3)
    assert all(gate.gate[2].weight.abs().max() > 0 for gate in gates)
    old = {key: value for key, value in config.items() if key != "gate_init"}  # a checkpoint's config before the key
    assert lavt.build_model(old).backbone.layers[0].gate.gate[2].weight.abs().max() == 0


# ------------------------------------------------------------------ LAVT-RIS details (recipes switch each back)


def test_lavt_upsamples_with_align_corners_as_the_reference(tiny_text_encoder, monkeypatch):
    calls = []
    interpolate = torch.nn.functional.interpolate

    def spy(*args, **kwargs):
        calls.append(kwargs["align_corners"])
        return interpolate(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "interpolate", spy)
    config = lavt_config(tiny_text_encoder)
    old = {key: value for key, value in config.items() if key != "align_corners"}  # a config from before the key
    for built, expected in (
        (config, True),
        ({**config, **lavt.RECIPES["unaligned-upsampling"]}, False),
        (old, False),
    ):
        model, tokenizer = lavt.build_model(built).eval(), lavt.build_tokenizer(built)
        calls.clear()
        with torch.no_grad():
            model(torch.rand(1, 3, HEIGHT, WIDTH), *tokenizer(["the red cube"]))
        assert calls == [expected] * 4  # three decoder steps and the final upsampling


def swin_linears(model):
    """The Linear layers of the Swin blocks and patch mergings (not PWAM's, not the gates')."""
    parts = [layer.blocks for layer in model.backbone.layers]
    parts += [layer.downsample for layer in model.backbone.layers if layer.downsample is not None]
    return [module for part in parts for module in part.modules() if isinstance(module, torch.nn.Linear)]


def test_swin_linear_layers_start_from_a_truncated_normal_as_the_reference(tiny_text_encoder):
    torch.manual_seed(0)
    config = lavt_config(tiny_text_encoder)
    model = lavt.build_model(config)
    linears = swin_linears(model)
    assert len(linears) == 5 * 4 + 3  # qkv, proj, fc1, fc2 per block (5 blocks), one per patch merging
    for linear in linears:
        assert 0.015 < linear.weight.std().item() < 0.025
        assert linear.bias is None or torch.count_nonzero(linear.bias) == 0
    pwam = model.backbone.layers[0].fusion.query  # a 1x1 convolution in LAVT-RIS: PyTorch's init
    assert pwam.weight.std().item() > 0.1 and torch.count_nonzero(pwam.bias) > 0
    old = {key: value for key, value in config.items() if key != "swin_init"}
    for built in ({**config, **lavt.RECIPES["pytorch-init"]}, old):
        qkv = swin_linears(lavt.build_model(built))[0]
        assert qkv.weight.std().item() > 0.1 and torch.count_nonzero(qkv.bias) > 0


def test_drop_path_is_0_3_at_every_size_as_the_reference(tiny_text_encoder):
    assert [lavt.default_config(size)["drop_path"] for size in ("tiny", "small", "base")] == [0.3, 0.3, 0.3]
    for changes, expected in (({"drop_path": 0.3}, 0.3), ({"drop_path": 0.3, **lavt.RECIPES["drop-path-0.2"]}, 0.2)):
        model = lavt.build_model(lavt_config(tiny_text_encoder, **changes))
        rates = [block.drop_path_rate for layer in model.backbone.layers for block in layer.blocks]
        assert rates[0] == 0.0 and rates[-1] == pytest.approx(expected)  # rising linearly to the last block


def test_only_the_first_text_layers_are_trained_as_the_reference(tiny_text_encoder):
    config = lavt_config(tiny_text_encoder)
    assert config["text_trainable_layers"] == 10
    model = lavt.build_model(config)
    text = model.text_encoder
    assert not any(p.requires_grad for p in text.embeddings.parameters())  # the tiny encoder has one layer
    assert all(p.requires_grad for p in text.encoder.layer[0].parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = make_optimizer(model, 1e-4)
    assert sum(p.numel() for group in optimizer.param_groups for p in group["params"]) == trainable
    embeddings = text.embeddings.word_embeddings.weight.clone()
    train_steps(model, lavt.build_tokenizer(config), steps=1, lr=1e-3)
    assert torch.equal(text.embeddings.word_embeddings.weight, embeddings)
    frozen = lavt.build_model({**config, "text_trainable_layers": 0}).text_encoder
    assert not any(p.requires_grad for p in frozen.parameters())
    old = {key: value for key, value in config.items() if key != "text_trainable_layers"}
    for built in ({**config, **lavt.RECIPES["train-all-text"]}, old):
        assert all(p.requires_grad for p in lavt.build_model(built).text_encoder.parameters())
    with pytest.raises(ClevrRemvError, match="train-all-text"):
        train_first_layers(torch.nn.Linear(2, 2), 10)


def test_with_the_6_layer_minilm_every_layer_trains_and_the_embeddings_stay():
    encoder, _ = load_text_encoder(default_text_encoder_path())
    train_first_layers(encoder, 10)
    assert len(encoder.encoder.layer) == 6
    assert all(p.requires_grad for p in encoder.encoder.parameters())
    assert not any(p.requires_grad for p in encoder.embeddings.parameters())


def test_shifted_window_mask_separates_wrapped_regions():
    mask = shifted_window_mask(8, 8, 4, 2, torch.device("cpu"))
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)  # top-left window: one region
    assert mask[3].min() == -100.0 and torch.all(mask[3].diagonal() == 0)


def test_swin_block_handles_sizes_that_are_not_window_multiples():
    block = SwinBlock(dim=8, heads=2, window=4, shifted=True, drop_path_rate=0.0)
    x = torch.rand(2, 5 * 7, 8)
    assert block(x, 5, 7).shape == (2, 35, 8)
    assert block(torch.rand(1, 2, 8), 1, 2).shape == (1, 2, 8)  # smaller than one window
    assert block(torch.rand(1, 3 * 12, 8), 3, 12).shape == (1, 36, 8)  # one row of windows


def transformers_swin_weights(source: dict, depths) -> dict:
    """Weights of a transformers ``SwinModel`` under this package's Swin names
    (transformers 5 names, with a fallback to the 4.x ones)."""
    v5 = any(".attention.q_proj." in key for key in source)
    names = (
        {
            "q": "attention.q_proj",
            "k": "attention.k_proj",
            "v": "attention.v_proj",
            "proj": "attention.o_proj",
            "fc1": "mlp.fc1",
            "fc2": "mlp.fc2",
            "table": "attention.relative_position_bias.relative_position_bias_table",
        }
        if v5
        else {
            "q": "attention.self.query",
            "k": "attention.self.key",
            "v": "attention.self.value",
            "proj": "attention.output.dense",
            "fc1": "intermediate.dense",
            "fc2": "output.dense",
            "table": "attention.self.relative_position_bias_table",
        }
    )
    state = {f"patch_embed.proj.{p}": source[f"embeddings.patch_embeddings.projection.{p}"] for p in ("weight", "bias")}
    state.update({f"patch_embed.norm.{p}": source[f"embeddings.norm.{p}"] for p in ("weight", "bias")})
    for i, depth in enumerate(depths):
        for j in range(depth):
            theirs, ours = f"encoder.layers.{i}.blocks.{j}.", f"layers.{i}.blocks.{j}."
            for p in ("weight", "bias"):
                state[f"{ours}norm1.{p}"] = source[f"{theirs}layernorm_before.{p}"]
                state[f"{ours}norm2.{p}"] = source[f"{theirs}layernorm_after.{p}"]
                state[f"{ours}attn.qkv.{p}"] = torch.cat([source[f"{theirs}{names[n]}.{p}"] for n in "qkv"])
                for mine, key in (("attn.proj", "proj"), ("mlp.fc1", "fc1"), ("mlp.fc2", "fc2")):
                    state[f"{ours}{mine}.{p}"] = source[f"{theirs}{names[key]}.{p}"]
            state[f"{ours}attn.relative_position_bias_table"] = source[theirs + names["table"]]
        if i < len(depths) - 1:
            for part in ("norm.weight", "norm.bias", "reduction.weight"):
                state[f"layers.{i}.downsample.{part}"] = source[f"encoder.layers.{i}.downsample.{part}"]
    return state


def test_vision_path_matches_the_transformers_swin():
    """With closed gates, each stage's output equals the reference Swin's (random weights)."""
    import transformers

    depths, heads = [2, 2, 2, 2], [1, 2, 2, 4]
    config = transformers.SwinConfig(
        image_size=160, embed_dim=16, depths=depths, num_heads=heads, window_size=4, drop_path_rate=0.0
    )
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    reference = transformers.SwinModel(config).eval()
    with torch.no_grad():
        for parameter in reference.parameters():  # position-bias tables start at 0 there
            parameter.normal_(0, 0.2)
    ours = lavt.LanguageAwareSwin(16, depths, heads, 4, text_dim=8, drop_path=0.0, gate_init="zero").eval()
    missing, unexpected = ours.load_state_dict(transformers_swin_weights(reference.state_dict(), depths), strict=False)
    assert unexpected == [] and all(".fusion." in k or ".gate." in k or "out_norms" in k for k in missing)
    image = torch.rand(2, 3, 160, 224)  # stage maps 40x56 ... 5x7: padded windows
    words, word_mask = torch.rand(2, 3, 8), torch.ones(2, 3, dtype=torch.long)
    with torch.no_grad():
        expected = reference(pixel_values=image, output_hidden_states=True).hidden_states
        x, height, width = ours.patch_embed(image)
        for layer, stage_output in zip(ours.layers, expected[1:], strict=True):
            _, x, height, width = layer(x, height, width, words, word_mask)
            assert torch.allclose(x, stage_output, atol=1e-4)


# ------------------------------------------------------------------ training lowers the loss


def test_baseline_training_lowers_the_loss():
    _, _, texts = two_square_batch()
    config = baseline.prepare_config(baseline.default_config("tiny"), texts)
    torch.manual_seed(0)
    losses = train_steps(baseline.build_model(config), baseline.build_tokenizer(config), 15, 1e-3)
    assert losses[-1] < 0.85 * losses[0]


def test_lavt_training_lowers_the_loss(tiny_text_encoder):
    config = lavt_config(tiny_text_encoder)
    torch.manual_seed(0)
    losses = train_steps(lavt.build_model(config), lavt.build_tokenizer(config), 15, 1e-3)
    assert losses[-1] < 0.7 * losses[0]


# ------------------------------------------------------------------ Swin checkpoints


def swin_state(model):
    """The vision part of a LAVT backbone under the names of an official Swin checkpoint."""
    state = {
        key: value.clone()
        for key, value in model.backbone.state_dict().items()
        if ".fusion." not in key and ".gate." not in key and not key.startswith("out_norms")
    }
    state["norm.weight"] = torch.ones(128)
    state["head.weight"] = torch.zeros(1000, 128)
    return state


def test_vision_weights_load_from_an_official_style_checkpoint(tiny_text_encoder, tmp_path):
    torch.manual_seed(1)
    source = lavt.build_model(lavt_config(tiny_text_encoder))
    path = tmp_path / "swin.pth"
    torch.save({"model": swin_state(source)}, path)
    torch.manual_seed(2)
    target = lavt.build_model(lavt_config(tiny_text_encoder))
    report = lavt.load_vision_weights(target, path)
    assert report["missing"] == [] and report["shape_mismatch"] == []
    assert report["unexpected"] == ["head.weight", "norm.weight"]
    assert report["language_path"] > 0
    for key, value in swin_state(source).items():
        if key in target.backbone.state_dict():
            assert torch.equal(target.backbone.state_dict()[key], value), key


def test_vision_weights_map_timm_layout_prefixes_and_window_size(tiny_text_encoder, tmp_path):
    torch.manual_seed(1)
    source = lavt.build_model(lavt_config(tiny_text_encoder, window=3))
    timm_style = {}
    for key, value in swin_state(source).items():
        if ".downsample." in key:  # timm merges at the start of the next stage
            stage = int(key.split(".")[1])
            key = key.replace(f"layers.{stage}.", f"layers.{stage + 1}.", 1)
        timm_style[f"module.backbone.{key}"] = value
    path = tmp_path / "timm.pth"
    torch.save({"state_dict": timm_style}, path)
    target = lavt.build_model(lavt_config(tiny_text_encoder))  # window 4: bias tables 49 rows
    report = load_swin_weights(target.backbone, path)
    assert report["missing"] == []
    assert len(report["resized"]) == 5  # one table per block
    table = target.backbone.layers[0].blocks[0].attn.relative_position_bias_table
    assert table.shape == (49, 1)
    downsample = "layers.0.downsample.reduction.weight"
    assert torch.equal(target.backbone.state_dict()[downsample], swin_state(source)[downsample])


def test_unusable_vision_weights(tiny_text_encoder, tmp_path):
    model = lavt.build_model(lavt_config(tiny_text_encoder))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ClevrRemvError, match="cannot be read"):
        load_swin_weights(model.backbone, garbage)
    unrelated = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, unrelated)
    with pytest.raises(ClevrRemvError, match="no tensor matches"):
        load_swin_weights(model.backbone, unrelated)
    with pytest.raises(ClevrRemvError, match="no such file"):
        load_swin_weights(model.backbone, tmp_path / "missing.pth")
