"""Which modules are pruned, on every architecture of the model table (``tests/common.py``)."""

from __future__ import annotations

import pytest
from torch import nn

from hf_prune import find_targets
from hf_prune.errors import NoMatchingModulesError, UnsupportedModelError
from hf_prune.targets import layer_group

from .common import MODELS, tiny_bert


@pytest.mark.parametrize("arch", list(MODELS))
def test_default_targets_are_encoder_linears_only(arch):
    case = MODELS[arch]
    targets = find_targets(case.build())
    assert all(isinstance(m, nn.Linear) for m in targets.values())
    joined = " ".join(targets)
    for forbidden in ("classifier", "pooler", "pre_classifier", "LayerNorm", "embedding", "head"):
        assert forbidden not in joined, forbidden
    groups = [layer_group(n, m) for n, m in targets.items()]
    assert (groups.count("attention"), groups.count("ffn")) == (case.attention_targets, case.ffn_targets)
    assert len(groups) == case.attention_targets + case.ffn_targets, sorted(set(groups))


@pytest.mark.parametrize("arch", list(MODELS))
def test_embeddings_are_optional(arch):
    model = MODELS[arch].build()
    targets = find_targets(model, include_embeddings=True)
    assert model.get_input_embeddings() in targets.values()
    assert model.get_input_embeddings() not in find_targets(model).values()


def test_include_and_exclude_patterns():
    model = tiny_bert()
    only_ffn = find_targets(model, include=[r"intermediate\.dense$", r"output\.dense$"], exclude=["attention"])
    assert len(only_ffn) == 4
    assert all("attention" not in name for name in only_ffn)
    first_layer = find_targets(model, include=[r"layer\.0\."])
    assert len(first_layer) == 6


@pytest.mark.parametrize("kwargs", [{"include": ["query", "no_such_module"]}, {"exclude": ["classifier"]}])
def test_pattern_matching_nothing_is_an_error(kwargs):
    with pytest.raises(NoMatchingModulesError, match="matches none"):
        find_targets(tiny_bert(), **kwargs)


def test_patterns_leaving_nothing_is_an_error():
    with pytest.raises(NoMatchingModulesError, match="leave no module"):
        find_targets(tiny_bert(), include=["query"], exclude=["layer"])


def test_invalid_regex_is_reported():
    with pytest.raises(NoMatchingModulesError, match="not a valid regex"):
        find_targets(tiny_bert(), include=["(query"])


def test_model_without_backbone_is_unsupported():
    with pytest.raises(UnsupportedModelError, match="base_model"):
        find_targets(nn.Sequential(nn.Linear(4, 4)))


def test_model_without_linear_layers_is_unsupported():
    class ConvOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.base_model = nn.Sequential(nn.Conv1d(2, 2, 1))

        def get_input_embeddings(self):
            return None

    with pytest.raises(UnsupportedModelError, match="no nn.Linear"):
        find_targets(ConvOnly())
