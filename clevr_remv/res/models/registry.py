"""The model registry: a name -> the module that implements the model.

A model module provides:
- ``DEFAULT_LR``: the learning rate ``benchmark`` uses when ``--lr`` is not given;
- ``default_config(size)``: a JSON-able config dict for ``size`` in ``SIZES``;
- ``prepare_config(config, train_texts)``: fill the data-dependent fields (e.g. a vocabulary);
- ``build_model(config)``: an ``nn.Module`` with ``forward(image, tokens, token_mask) -> logits``;
- ``build_tokenizer(config)``: a callable ``texts -> (tokens, token_mask)`` (LongTensors B x L).
- ``ATTENTION``: {"vision", "language", "cross_modal"} -> whether that part uses attention (their
  count is the paper's A-Num, Table 7.4).
Optional: ``RECIPES`` (a recipe name -> config overrides; ``default`` is ``{}``),
``vision_backbone(config)`` (the name of a backbone that takes pretrained weights, or None) with
``load_vision_weights(model, path)`` (a load report).
Adding a model is one such module plus one line in ``MODELS``.
"""

import importlib

from clevr_remv.errors import ClevrRemvError

SIZES = ("tiny", "small", "base")

MODELS = {
    "baseline": "clevr_remv.res.models.baseline",
    "cmsa": "clevr_remv.res.models.cmsa",
    "lavt": "clevr_remv.res.models.lavt",
    "lavt-cnn": "clevr_remv.res.models.lavt_cnn",
}


def model_names() -> list:
    """The registered model names."""
    return sorted(MODELS)


def get_model(name: str):
    """The module implementing model ``name``; ClevrRemvError listing the known names otherwise."""
    if name not in MODELS:
        raise ClevrRemvError(f"--model: unknown model {name!r}; choose one of {', '.join(model_names())}")
    return importlib.import_module(MODELS[name])


def recipe_overrides(module, recipe: str) -> dict:
    """The config overrides of ``recipe`` for a model module, with the recipe's name under
    ``recipe``; ``default`` is every model's own config."""
    recipes = getattr(module, "RECIPES", {"default": {}})
    if recipe not in recipes:
        raise ClevrRemvError(
            f"--recipe: model {module.__name__.rsplit('.', 1)[-1]!r} has no recipe {recipe!r}; "
            f"choose one of {', '.join(recipes)}"
        )
    return {**recipes[recipe], "recipe": recipe}


def attention_parts(name: str) -> dict:
    """Which parts of model ``name`` use attention: {"vision", "language", "cross_modal"} -> bool."""
    return dict(get_model(name).ATTENTION)
