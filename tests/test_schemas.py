"""clevr_remv.schemas: validation through the compiled and the reference validator."""

import fastjsonschema
import pytest

from clevr_remv import schemas
from clevr_remv.errors import ClevrRemvError

GOOD_SPLITS = {"format_version": 1, "seed": 0, "ratios": [1.0], "splits": {"train": [0, 1]}}


def test_a_valid_document_passes_and_an_invalid_one_names_the_field():
    schemas.validate(GOOD_SPLITS, "splits", "splits.json")
    with pytest.raises(ClevrRemvError, match="splits.json: field 'seed' is invalid"):
        schemas.validate(dict(GOOD_SPLITS, seed="zero"), "splits", "splits.json")


def test_a_disagreement_between_the_validators_is_a_rejection(monkeypatch):
    def rejects_everything(document):
        raise fastjsonschema.JsonSchemaException("data must be nothing")

    monkeypatch.setattr(schemas, "_compiled", lambda name: rejects_everything)
    with pytest.raises(
        ClevrRemvError,
        match=r"splits.json: rejected by the compiled splits schema \(data must be "
        r"nothing\) although jsonschema accepts it; .*clevr-remv bug",
    ):
        schemas.validate(GOOD_SPLITS, "splits", "splits.json")
