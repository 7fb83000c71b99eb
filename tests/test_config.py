"""Configs: validation, JSON round trip, and the method registry."""

from __future__ import annotations

import json

import pytest

from hf_prune import FrozenMaskConfig, MagnitudeConfig, PruningConfig, RPPConfig, register_method
from hf_prune.errors import DuplicateMethodError, InvalidConfigError, UnknownMethodError
from hf_prune.methods import MagnitudePruning, create_method
from hf_prune.registry import available_methods, get_method_class


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize("config_class", [RPPConfig, MagnitudeConfig])
def test_target_sparsity_outside_range_is_rejected(config_class, value):
    with pytest.raises(ValueError, match=r"target_sparsity=.*\[0\.0, 1\.0\)"):
        config_class(target_sparsity=value)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"target_sparsity": "0.8"}, "target_sparsity"),
        ({"include": "query"}, "include"),
        ({"reweight_interval": 2.5}, "reweight_interval"),
        ({"threshold": "exact"}, "threshold"),
        ({"include_embeddings": 1}, "include_embeddings"),
    ],
)
def test_wrong_field_type_names_the_field(kwargs, field):
    with pytest.raises(InvalidConfigError, match=field):
        RPPConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gamma": 0.0},
        {"epsilon": -1.0},
        {"reweight_interval": 0},
        {"begin_fraction": 0.8, "end_fraction": 0.2},
        {"begin_step": 10, "end_step": 5},
        {"controller_gain": -1.0},
    ],
)
def test_rpp_value_ranges(kwargs):
    with pytest.raises(InvalidConfigError):
        RPPConfig(**kwargs)


def test_magnitude_initial_sparsity_must_not_exceed_target():
    with pytest.raises(InvalidConfigError, match="initial_sparsity"):
        MagnitudeConfig(target_sparsity=0.5, initial_sparsity=0.6)


@pytest.mark.parametrize(
    "config",
    [
        RPPConfig(target_sparsity=0.7, threshold="adam", exclude=["pooler"]),
        MagnitudeConfig(sparsity_distribution="global"),
        FrozenMaskConfig(include_embeddings=True),
    ],
)
def test_json_round_trip(config, tmp_path):
    config.save(tmp_path)
    loaded = PruningConfig.load(tmp_path)
    assert loaded == config and type(loaded) is type(config)
    assert json.loads((tmp_path / "hf_prune_config.json").read_text())["method"] == config.method


def test_from_dict_rejects_unknown_fields_and_methods():
    with pytest.raises(InvalidConfigError, match="gama"):
        PruningConfig.from_dict({"method": "rpp", "gama": 1.0})
    with pytest.raises(UnknownMethodError, match="registered methods"):
        PruningConfig.from_dict({"method": "lottery"})
    with pytest.raises(KeyError):  # also a KeyError for callers that catch that
        get_method_class("lottery")
    with pytest.raises(InvalidConfigError, match="method"):
        PruningConfig.from_dict({"target_sparsity": 0.5})


def test_registry_refuses_duplicates():
    assert {"rpp", "magnitude", "frozen"} <= set(available_methods())

    class OtherMagnitude(MagnitudePruning):
        pass

    with pytest.raises(DuplicateMethodError, match="magnitude"):
        register_method(MagnitudeConfig, OtherMagnitude)
    register_method(MagnitudeConfig, MagnitudePruning)  # the same classes again (a reload): accepted


def test_create_method_checks_config_type():
    method = create_method(MagnitudeConfig())
    assert isinstance(method, MagnitudePruning)
    with pytest.raises(InvalidConfigError):
        MagnitudePruning(RPPConfig())


def test_schedule_steps_resolve_from_fractions_or_steps():
    assert RPPConfig().resolve_steps(600) == (60, 420)
    assert RPPConfig(begin_step=5, end_step=50).resolve_steps(600) == (5, 50)
