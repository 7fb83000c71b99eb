"""Loose ends of the groundwork issue: heads of a model that is its own base_model, counts that
were always 0, model classes a loader cannot import, and the CLI reading the format registry."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from hf_prune import MagnitudeConfig, PruningTrainer, find_targets, load_pruned
from hf_prune.cli import main
from hf_prune.formats import ExportFormatError, format_table, formats_for
from hf_prune.measure import parameter_counts

from .conftest import tiny_bert, training_args


class SelfBaseConfig(PretrainedConfig):
    model_type = "hf_prune_test_self_base"

    def __init__(self, hidden: int = 8, layers: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.layers = hidden, layers


class SelfBaseModel(PreTrainedModel):
    """Its ``base_model`` is itself (no attribute named by ``base_model_prefix``); the head sits
    beside the layer stack."""

    config_class = SelfBaseConfig
    base_model_prefix = "no_such_backbone"

    def __init__(self, config):
        super().__init__(config)
        self.layers = nn.ModuleList(nn.Linear(config.hidden, config.hidden) for _ in range(config.layers))
        self.classifier = nn.Linear(config.hidden, 2)
        self.post_init()

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.classifier(x)


def test_heads_of_a_model_that_is_its_own_base_model_are_not_targets():
    model = SelfBaseModel(SelfBaseConfig())
    assert model.base_model is model
    assert list(find_targets(model)) == ["layers.0", "layers.1"]


def test_parameter_counts_count_the_pruned_matrices():
    model = tiny_bert()
    targets = find_targets(model)
    counts = parameter_counts(model, targets)
    assert counts["pruned_matrices"] == sum(m.weight.numel() for m in targets.values()) > 0


def test_export_records_the_class_module_and_an_unimportable_class_is_named(tmp_path, dataset):
    trainer = PruningTrainer(
        model=tiny_bert(),
        args=training_args(tmp_path / "run", max_steps=4),
        train_dataset=dataset,
        pruning=MagnitudeConfig(target_sparsity=0.5, begin_step=1, end_step=3, prune_interval=1),
    )
    trainer.train()
    trainer.save_pruned(tmp_path / "export", format="compact")
    manifest_path = tmp_path / "export" / "hf_prune_export.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["model_module"] == "transformers.models.bert.modeling_bert"
    manifest.update(model_class="GoneModel", model_module="some_removed_package.modeling")
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(
        ExportFormatError, match="'GoneModel' from module 'some_removed_package.modeling'.*model_class="
    ):
        load_pruned(tmp_path / "export")
    from transformers import BertForSequenceClassification

    loaded = load_pruned(tmp_path / "export", model_class=BertForSequenceClassification)
    assert isinstance(loaded, BertForSequenceClassification)


def test_cli_lists_methods_with_their_formats_and_the_format_table(capsys):
    assert main(["methods"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["rank"] == "formats: dense, factored" and lines["rpp"] == "formats: dense, compact, masks"
    assert main(["formats", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == format_table()
    assert formats_for("elementwise") == ["dense", "compact", "masks"]


def test_readme_format_table_is_the_registry_table():
    """The docs derive from the registry: the README's table is `hf-prune formats --markdown`."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- formats-table: start -->\n", "\n<!-- formats-table: end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == format_table()
