"""dataset.json records how expressions were made; a resume with other settings is refused."""

import pytest
from click.testing import CliRunner

from clevr_remv.cli import main
from clevr_remv.dataset.store import DatasetStore
from clevr_remv.errors import ClevrRemvError
from clevr_remv.generate.config import GenerateConfig
from clevr_remv.generate.writer import open_dataset
from clevr_remv.refexp import refexp_settings


def synthetic_config(store):
    return GenerateConfig.from_dict(store.info()["config"])


def test_resuming_with_other_expression_settings_is_refused(tiny_dataset_copy):
    store = DatasetStore(tiny_dataset_copy)
    before = store.dataset_json_path.read_bytes()
    assert store.info()["refexps"] == refexp_settings(0, 8)
    assert open_dataset(tiny_dataset_copy, synthetic_config(store), refexp_settings(0, 8)).root == store.root
    with pytest.raises(ClevrRemvError, match="per_scene: existing 8, requested 5.*clevr-remv refexps"):
        open_dataset(tiny_dataset_copy, synthetic_config(store), refexp_settings(0, 5))
    assert store.dataset_json_path.read_bytes() == before


def test_the_refexps_command_records_its_settings(tiny_dataset_copy):
    result = CliRunner().invoke(
        main, ["refexps", "--data", str(tiny_dataset_copy), "--per-scene", "3", "--keep-partial"]
    )
    assert result.exit_code == 0, result.output
    store = DatasetStore(tiny_dataset_copy)
    assert store.info()["refexps"] == refexp_settings(0, 3, keep_partial=True)
    assert all(len(store.load_refexps(i)["expressions"]) <= 3 for i in store.scene_ids())
    assert open_dataset(tiny_dataset_copy, synthetic_config(store), refexp_settings(0, 3, keep_partial=True))
