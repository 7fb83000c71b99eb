"""Compact and factored exports: round trips, sizes, reports, bad folders, atomic writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, BertConfig, BertForMaskedLM

from hf_prune import (
    PruningConfig,
    load_pruned,
    save_pruned,
)
from hf_prune.export import read_report
from hf_prune.factorization import FactorizedLinear, replace_module
from hf_prune.formats import (
    ExportFormatError,
    MissingExportFileError,
    available_formats,
    formats_for,
    pack_mask,
    unpack_mask,
)
from hf_prune.formats.common import file_sha256
from hf_prune.methods import PruningMethod

from .common import input_ids, logits, magnitude_pruned, tiny_bert

IDS = input_ids()  # what common.logits() runs the models on
FACTORED = {  # module -> rank: 32x64 and 64x32 layers at rank 4, a 32x32 at rank 8
    "bert.encoder.layer.0.intermediate.dense": 4,
    "bert.encoder.layer.1.output.dense": 4,
    "bert.encoder.layer.1.attention.self.query": 8,
}


# --------------------------------------------------------------------------- helpers
@dataclass
class CompiledRankConfig(PruningConfig):
    """Config of the test double below (not registered)."""

    method = "test-compiled-rank"


class CompiledRank(PruningMethod):
    """Test double of a rank method: materialize() compiles chosen Linear layers by truncated SVD."""

    config_class = CompiledRankConfig
    weight_structure = "factored"

    def __init__(self, ranks: dict[str, int]) -> None:
        super().__init__(CompiledRankConfig())
        self.ranks = ranks
        self.model: torch.nn.Module | None = None

    def attach(self, model: torch.nn.Module) -> None:
        super().attach(model)  # records the model (save_pruned checks the method pruned it)
        self.model = model
        self.targets = {name: model.get_submodule(name) for name in self.ranks}

    def step(self, step: int, optimizer: Any = None) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}

    def finalize(self) -> dict[str, Any]:
        return {"method": self.name, "ranks": dict(self.ranks)}

    @property
    def finished(self) -> bool:
        return True

    def materialize(self) -> None:
        for name, rank in self.ranks.items():
            module = self.model.get_submodule(name)
            if not isinstance(module, FactorizedLinear):
                replace_module(self.model, name, FactorizedLinear.from_linear_svd(module, rank))


def factored_model():
    model = tiny_bert()
    method = CompiledRank(FACTORED)
    method.attach(model)
    return model, method


def assert_same_model(loaded, original):
    """Same keys, same values, same outputs (within 1e-5)."""
    expected = original.state_dict()
    state = loaded.state_dict()
    assert sorted(state) == sorted(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, atol=0, rtol=0, msg=key)
    torch.testing.assert_close(logits(loaded), logits(original), atol=1e-5, rtol=0)
    assert not loaded.training


def manifest_of(folder):
    return json.loads((folder / "hf_prune_export.json").read_text())


def rewrite(folder, tensors=None, manifest=None):
    """Replace the weights file and/or manifest, keeping the recorded size and checksum right, so
    the checks behind the checksum are the ones tested."""
    data = manifest_of(folder) if manifest is None else manifest
    path = folder / data["weights_file"]
    if tensors is not None:
        save_file(tensors, str(path), metadata={"format": "pt"})
    data["weights_bytes"], data["weights_sha256"] = os.path.getsize(path), file_sha256(path)
    (folder / "hf_prune_export.json").write_text(json.dumps(data))


@pytest.fixture
def compact_export(tmp_path):
    model, method = magnitude_pruned()
    out = tmp_path / "compact"
    report = save_pruned(model, out, method, format="compact")
    return model, method, out, report


@pytest.fixture
def factored_export(tmp_path):
    model, method = factored_model()
    out = tmp_path / "factored"
    report = save_pruned(model, out, method, format="factored")
    return model, out, report


# --------------------------------------------------------------------------- bit packing
def test_mask_bits_are_row_major_least_significant_bit_first():
    mask = torch.rand(7, 5, generator=torch.Generator().manual_seed(0)) > 0.6
    packed = pack_mask(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == 5  # ceil(35 / 8)
    assert packed.tolist() == np.packbits(mask.flatten().numpy(), bitorder="little").tolist()
    assert torch.equal(unpack_mask(packed, 35).view(7, 5), mask)
    assert pack_mask(torch.tensor([False, True, True])).tolist() == [0b110]


# --------------------------------------------------------------------------- compact
def test_compact_round_trip_is_exact_and_smaller(tmp_path, compact_export):
    model, method, out, report = compact_export
    save_pruned(model, tmp_path / "dense", method, format="dense")
    assert sorted(os.listdir(out)) == [
        "README.md",
        "config.json",
        "hf_prune_config.json",
        "hf_prune_export.json",
        "hf_prune_loader.py",
        "model.compact.safetensors",
        "pruning_report.json",
        "sparsity_per_layer.png",
    ]
    manifest = manifest_of(out)
    assert manifest["format"] == "compact" and manifest["model_class"] == "BertForSequenceClassification"
    assert manifest["bit_order"] == "little"
    names = [f"{n}.weight" for n in method.targets]
    assert sorted(manifest["encoded_tensors"]) == sorted(names)

    loaded = load_pruned(out)
    assert type(loaded).__name__ == "BertForSequenceClassification"
    assert_same_model(loaded, model)

    compact_bytes = os.path.getsize(out / "model.compact.safetensors")
    dense_bytes = os.path.getsize(tmp_path / "dense" / "model.safetensors")
    assert compact_bytes < 0.5 * dense_bytes  # embeddings are stored whole, so not 0.131x overall
    assert report["bytes_after"] == compact_bytes
    # pruned matrices at 90% in float32: (1/8 + 0.1 * 4) / 4 = 0.131 of their dense bytes
    assert report["pruned_bytes"] / report["pruned_dense_bytes"] == pytest.approx(0.131, abs=0.002)
    assert report["saved_sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert report["sparsity_kind"] == "zeros"
    assert set(report["saved_sparsity_per_matrix"]) == set(names)
    stored = load_file(str(out / "model.compact.safetensors"))
    assert report["parameters_after"] == sum(t.numel() for k, t in stored.items() if not k.endswith("::mask"))
    assert report["parameters_before"] == sum(p.numel() for p in model.parameters())
    assert read_report(out)["format"] == "compact"


def test_compact_folder_is_not_mistaken_for_a_plain_checkpoint(compact_export):
    *_, out, _ = compact_export
    with pytest.raises(OSError):
        AutoModelForSequenceClassification.from_pretrained(out)


REMOTE_LOAD = """
import sys, torch
sys.modules["hf_prune"] = None  # the export's own loader must not need hf_prune
from transformers import AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
assert type(model).__name__ == "BertForSequenceClassification", type(model)
with torch.no_grad():
    torch.save(model(input_ids=torch.load(sys.argv[2])).logits, sys.argv[3])
"""


@pytest.mark.parametrize("export", ["compact_export", "factored_export"])
def test_trust_remote_code_loads_the_export_without_hf_prune(request, tmp_path, export):
    model, *_, out, _ = request.getfixturevalue(export)
    assert json.loads((out / "config.json").read_text())["auto_map"] == {
        "AutoModelForSequenceClassification": "hf_prune_loader.HfPruneBertForSequenceClassification"
    }
    torch.save(IDS, tmp_path / "ids.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", REMOTE_LOAD, str(out), str(tmp_path / "ids.pt"), str(tmp_path / "out.pt")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), logits(model), atol=1e-5, rtol=0)
    # hf_prune's own loader gives a model whose config no longer points at the folder's loader.
    assert not hasattr(load_pruned(out).config, "auto_map")


def test_compact_round_trip_with_tied_pruned_embeddings(tmp_path):
    torch.manual_seed(0)
    model = BertForMaskedLM(
        BertConfig(
            vocab_size=100,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    )
    model, method = magnitude_pruned(model, sparsity=0.8, include_embeddings=True)
    save_pruned(model, tmp_path / "mlm", method, format="compact")
    manifest = manifest_of(tmp_path / "mlm")
    assert manifest["aliases"] == {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }
    assert "bert.embeddings.word_embeddings.weight" in manifest["encoded_tensors"]
    loaded = load_pruned(tmp_path / "mlm")
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    model.eval()
    torch.testing.assert_close(loaded(input_ids=IDS).logits, model(input_ids=IDS).logits, atol=1e-5, rtol=0)
    remote = AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm", trust_remote_code=True)
    assert remote.cls.predictions.decoder.weight is remote.bert.embeddings.word_embeddings.weight
    assert_same_model(remote, model)


def test_half_precision_values_keep_their_dtype(tmp_path):
    model, method = magnitude_pruned(tiny_bert().to(torch.bfloat16))
    save_pruned(model, tmp_path / "bf16", method, format="compact")
    stored = load_file(str(tmp_path / "bf16" / "model.compact.safetensors"))
    name = next(iter(method.targets)) + ".weight"
    assert stored[name + "::values"].dtype == torch.bfloat16
    loaded = load_pruned(tmp_path / "bf16")
    assert loaded.dtype == torch.bfloat16
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# --------------------------------------------------------------------------- factored
def test_factored_round_trip_has_fewer_parameters(tmp_path, factored_export):
    model, out, report = factored_export
    assert sorted(os.listdir(out)) == [
        "README.md",
        "config.json",
        "hf_prune_config.json",
        "hf_prune_export.json",
        "hf_prune_loader.py",
        "model.factored.safetensors",
        "pruning_report.json",
        "sparsity_per_layer.png",
    ]
    manifest = manifest_of(out)
    assert manifest["factored_modules"]["bert.encoder.layer.0.intermediate.dense"] == {
        "in_features": 32,
        "out_features": 64,
        "rank": 4,
        "bias": True,
    }
    assert set(manifest["factored_modules"]) == set(FACTORED)

    loaded = load_pruned(out)
    for name, rank in FACTORED.items():
        module = loaded.get_submodule(name)
        assert isinstance(module, FactorizedLinear) and module.rank == rank
    assert_same_model(loaded, model)

    stored = load_file(str(out / "model.factored.safetensors"))
    assert "bert.encoder.layer.0.intermediate.dense.down.weight" in stored
    assert report["parameters_after"] == sum(t.numel() for t in stored.values())
    assert report["parameters_after"] == sum(p.numel() for p in loaded.parameters())
    removed = sum(32 * 64 - r * 96 for r in (4, 4)) + (32 * 32 - 8 * 64)
    assert report["parameters_before"] == report["parameters_after"] + removed
    assert report["parameters_before"] == sum(p.numel() for p in tiny_bert().parameters())
    assert report["bytes_after"] == os.path.getsize(out / "model.factored.safetensors")
    assert report["sparsity_kind"] == "parameters_removed"
    assert report["saved_sparsity"] == pytest.approx(removed / (2 * 32 * 64 + 32 * 32))


def test_dense_export_of_a_factored_model_loads_with_from_pretrained(tmp_path, factored_export):
    model, _, _ = factored_export  # already compiled into FactorizedLinear by the factored export
    method = CompiledRank(FACTORED)
    method.attach(model)
    report = save_pruned(model, tmp_path / "dense", method, format="dense")
    assert manifest_of(tmp_path / "dense")["densified_modules"] == sorted(FACTORED)
    assert isinstance(model.get_submodule(next(iter(FACTORED))), FactorizedLinear), "the model was changed"
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "dense")
    for one in (plain, load_pruned(tmp_path / "dense")):
        assert isinstance(one.get_submodule(next(iter(FACTORED))), torch.nn.Linear)
        torch.testing.assert_close(logits(one), logits(model), atol=1e-5, rtol=0)
    assert report["parameters_before"] == sum(p.numel() for p in plain.parameters())


def test_format_and_method_must_fit(tmp_path):
    # The lists in the messages are the registry's (its order is not the point here).
    model, method = magnitude_pruned()
    fits = re.escape(str(formats_for("elementwise")))
    with pytest.raises(ValueError, match=rf"'magnitude' produces \(elementwise weights\); use one of {fits}"):
        save_pruned(model, tmp_path / "x", method, format="factored")
    model, method = factored_model()
    fits = re.escape(str(formats_for("factored")))
    with pytest.raises(ValueError, match=rf"format='compact' cannot store .*use one of {fits}"):
        save_pruned(model, tmp_path / "x", method, format="compact")
    every = re.escape(str(available_formats()))
    with pytest.raises(ValueError, match=rf"Unknown export format 'sparse'; choose one of {every}"):
        save_pruned(model, tmp_path / "x", method, format="sparse")
    assert {"compact", "dense", "factored"} <= set(available_formats())
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- bad folders
def test_missing_manifest_or_weights_file(compact_export, tmp_path):
    *_, out, _ = compact_export
    (out / "model.compact.safetensors").rename(tmp_path / "moved")
    with pytest.raises(MissingExportFileError, match="model.compact.safetensors is missing.*whole export folder"):
        load_pruned(out)
    (tmp_path / "moved").rename(out / "model.compact.safetensors")
    (out / "hf_prune_export.json").unlink()
    with pytest.raises(MissingExportFileError, match="hf_prune_export.json is missing"):
        load_pruned(out)
    with pytest.raises(MissingExportFileError, match="No export folder"):
        load_pruned(tmp_path / "nowhere")
    with pytest.raises(MissingExportFileError, match="not an existing Hub repo|nor an existing Hub repo"):
        load_pruned("not a repo id!")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupted_weights_file(compact_export, damage):
    *_, out, _ = compact_export
    path = out / "model.compact.safetensors"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
        match = "truncated or corrupted"
    elif damage == "flip":
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
        match = "SHA-256.*corrupted"
    else:  # a damaged file whose manifest was (wrongly) updated: the safetensors parser catches it
        path.write_bytes(b"\x00" * len(data))
        rewrite(out)
        match = "not a readable safetensors file"
    with pytest.raises(ExportFormatError, match=f"model.compact.safetensors.*{match}"):
        load_pruned(out)


def test_compact_entry_inconsistencies_are_refused(compact_export):
    _, method, out, _ = compact_export
    name = next(iter(method.targets)) + ".weight"
    tensors = load_file(str(out / "model.compact.safetensors"))
    good = dict(tensors)

    tensors[name + "::values"] = tensors[name + "::values"][:-1]  # one value short
    manifest = manifest_of(out)
    manifest["encoded_tensors"][name]["nnz"] -= 1
    rewrite(out, tensors, manifest)
    with pytest.raises(ExportFormatError, match=f"{name}.*mask marks 102 non-zero weights but 101 values"):
        load_pruned(out)

    manifest["encoded_tensors"][name]["nnz"] += 1
    manifest["encoded_tensors"][name]["shape"] = [16, 32]
    rewrite(out, good, manifest)
    with pytest.raises(ExportFormatError, match=r"shape \[16, 32\] needs uint8 of shape \[64\]"):
        load_pruned(out)

    manifest["encoded_tensors"][name]["shape"] = [32, 32]
    manifest["encoded_tensors"][name]["nnz"] = 5
    rewrite(out, good, manifest)
    with pytest.raises(ExportFormatError, match="manifest expects 5 float32"):
        load_pruned(out)


def test_unknown_format_and_mismatched_keys_in_manifest(compact_export):
    _, method, out, _ = compact_export
    manifest = manifest_of(out)
    rewrite(out, manifest={**manifest, "format": "sparse-coo"})
    with pytest.raises(ExportFormatError, match="names format 'sparse-coo'.*Upgrade hf_prune"):
        load_pruned(out)
    tensors = load_file(str(out / "model.compact.safetensors"))
    del tensors["classifier.bias"]
    rewrite(out, tensors, manifest)
    with pytest.raises(ExportFormatError, match=r"missing keys \['classifier.bias'\]"):
        load_pruned(out)
    tensors["classifier.bias"], tensors["extra.weight"] = torch.zeros(2), torch.zeros(1)
    rewrite(out, tensors, manifest)
    with pytest.raises(ExportFormatError, match=r"unexpected keys \['extra.weight'\]"):
        load_pruned(out)


def test_factored_manifest_that_does_not_fit_the_model(factored_export):
    _, out, _ = factored_export
    manifest = manifest_of(out)
    manifest["factored_modules"]["bert.encoder.layer.0.intermediate.dense"]["out_features"] = 48
    rewrite(out, manifest=manifest)
    with pytest.raises(ExportFormatError, match="intermediate.dense' is 32->48.*mixes exports"):
        load_pruned(out)


# --------------------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("fmt", ["compact", "factored"])
def test_failed_export_leaves_nothing_and_keeps_the_previous_one(tmp_path, monkeypatch, fmt):
    model, method = magnitude_pruned() if fmt == "compact" else factored_model()
    out = tmp_path / "export"
    save_pruned(model, out, method, format=fmt)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}

    import hf_prune.formats.common as common

    def crash(tensors, path, metadata=None):
        with open(path, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(common, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_pruned(model, out, method, format=fmt)
    with pytest.raises(OSError, match="disk full"):
        save_pruned(model, tmp_path / "fresh", method, format=fmt)
    assert sorted(os.listdir(tmp_path)) == ["export"]
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


# --------------------------------------------------------------------------- Hub repo ids
def test_load_from_a_hub_repo_id(compact_export, monkeypatch):
    model, _, out, _ = compact_export
    import huggingface_hub

    calls = []
    monkeypatch.setattr(
        huggingface_hub, "hf_hub_download", lambda repo, name, **kw: calls.append((repo, name)) or str(out / name)
    )
    monkeypatch.setattr(
        huggingface_hub,
        "snapshot_download",
        lambda repo, allow_patterns, **kw: calls.append((repo, tuple(allow_patterns))) or str(out),
    )
    loaded = load_pruned("someone/tiny-compact", revision="main")
    assert calls == [
        ("someone/tiny-compact", "hf_prune_export.json"),
        ("someone/tiny-compact", ("*.json", "model.compact.safetensors")),
    ]
    assert_same_model(loaded, model)
