"""The training bar shows the learning rate of the step just taken (not the schedule's next value)."""

import pytest

torch = pytest.importorskip("torch")

from clevr_remv.res.models import training  # noqa: E402


class _PixelModel(torch.nn.Module):
    """Two logits per pixel from the image alone (the text inputs are ignored)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, images, tokens, token_mask):
        return self.conv(images)


class _Bar:
    """Stands in for tqdm: iterates the loader and records every postfix."""

    postfixes = []

    def __init__(self, iterable, **_):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **values):
        self.postfixes.append(values)


def test_a_one_epoch_run_shows_the_lr_it_trained_with(monkeypatch):
    monkeypatch.setattr(training, "tqdm", _Bar)
    _Bar.postfixes = []
    torch.manual_seed(0)
    model = _PixelModel()
    batch = {"image": torch.rand(2, 3, 4, 4), "text": ["a", "b"], "mask": torch.rand(2, 4, 4) > 0.5}
    optimizer = training.make_optimizer(model, 1e-3)
    scheduler = training.make_poly_schedule(optimizer, total_steps=2)  # 1 epoch of 2 steps

    tokenizer = lambda texts: (torch.zeros(len(texts), 1, dtype=torch.long), torch.ones(len(texts), 1))  # noqa: E731
    training.train_epoch(model, [batch, batch], tokenizer, optimizer, scheduler, [1.0, 1.0], "cpu")
    # poly decay (power 0.9) over 2 steps: step 1 at 1e-3, step 2 at 1e-3 * 0.5 ** 0.9; after it, 0.
    assert [postfix["lr"] for postfix in _Bar.postfixes] == ["1.00e-03", f"{1e-3 * 0.5**0.9:.2e}"]
    assert scheduler.get_last_lr()[0] == 0.0
