"""Model cards (hf_prune.cards): the four templates render, parse back with huggingface_hub, and fail clearly.

Single-task (compact), rank (factored) and multitask cards (the shared model's and each task's)
are written for real exports of tiny models; a multitask card of a bare encoder and the masks
card from hand-made export folders (a mixture recorded by CardInfo; a manifest with base model +
revision and no weights). The loading code of the multitask cards is run as printed: on the
local export folder, and against the local test Hub (``tests/hub_server.py``). No test touches
the network: ``ModelCard.load`` reads the local README.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import BertConfig, BertForSequenceClassification

from hf_prune import MagnitudeConfig, RankConfig, create_method, load_pruned, save_pruned
from hf_prune.card_plot import PLOT_FILE_NAME
from hf_prune.cards import TEMPLATE_NAMES, CardInfo, MissingCardFieldError, TaskResult, read_template, write_card
from hf_prune.errors import InvalidConfigError
from hf_prune.formats import MissingExportFileError
from hf_prune.multitask import MultitaskModel

from .common import MULTITASK_HEADS, tiny_multitask
from .hub_server import USER, HubServer

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
KINDS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense")
KINDS += ("intermediate.dense", "output.dense")


def tiny_model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(
        BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100)
    )


@pytest.fixture(scope="module")
def compact_export(tmp_path_factory: pytest.TempPathFactory) -> str:
    model = tiny_model()
    method = create_method(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1))
    method.attach(model)
    method.begin(2)
    method.step(1)
    method.step(2)
    folder = str(tmp_path_factory.mktemp("cards") / "compact")
    save_pruned(model, folder, method, format="compact")
    return folder


@pytest.fixture(scope="module")
def factored_export(tmp_path_factory: pytest.TempPathFactory) -> str:
    model = tiny_model()
    method = create_method(RankConfig(target_params_fraction=0.5, warmup_end_step=2, end_step=4))
    method.attach(model)
    method.begin(total_steps=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(1, 6):
        inputs = torch.randint(0, 100, (2, 8), generator=generator)
        model(input_ids=inputs, labels=torch.tensor([0, 1])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        method.step(step, optimizer)
    folder = str(tmp_path_factory.mktemp("cards") / "factored")
    save_pruned(model, folder, method, format="factored")
    return folder


def _write_json(folder: str, name: str, data: dict) -> None:
    with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)


def hand_made_export(folder: str, *, fmt: str, method: str, layers: int = 6, architecture: str = "BertModel") -> str:
    """An export folder laid out like save_pruned's (MiniLM-sized names), without weights files."""
    os.makedirs(folder, exist_ok=True)
    prefix = "" if fmt == "masks" else "bert."
    names = [f"{prefix}encoder.layer.{i}.{kind}.weight" for i in range(layers) for kind in KINDS]
    per_matrix = {name: round(0.7 + 0.15 * i / len(names), 4) for i, name in enumerate(names)}
    shapes = {
        name: [1536, 384]
        if "intermediate" in name
        else [384, 1536]
        if name.endswith("output.dense.weight") and "attention" not in name
        else [384, 384]
        for name in names
    }
    report = {
        "method": method,
        "format": fmt,
        "target_sparsity": 0.8,
        "pruned_weights": names,
        "sparsity_kind": "zeros",
        "saved_sparsity": 0.8,
        "saved_model_sparsity": None if fmt == "masks" else 0.37,
        "saved_sparsity_per_matrix": per_matrix,
        "parameters_before": 10_616_832 if fmt == "masks" else 22_713_216,
        "parameters_after": 0 if fmt == "masks" else 14_219_520,
        "bytes_before": 42_467_328,
        "bytes_after": 1_327_104 if fmt == "masks" else 57_000_000,
    }
    manifest = {
        "hf_prune_export_version": 1,
        "format": fmt,
        "model_class": architecture,
        "model_module": "transformers.models.bert.modeling_bert",
        "versions": {"hf_prune": "0.1.0", "transformers": "5.23.0", "torch": "2.13.0"},
        "files": ["config.json", "hf_prune_config.json", "hf_prune_export.json", "pruning_report.json"],
    }
    key = "masked_tensors" if fmt == "masks" else "encoded_tensors"
    manifest[key] = {name: {"shape": shapes[name], "dtype": "float32", "nnz": 1} for name in names}
    if fmt == "masks":
        manifest.update(base_model=MINILM, base_model_revision="c9745ed1d9f207416be6d2e6f8de32d1f16199bf")
    settings = {"hf_prune_config_version": 1, "method": method, "target_sparsity": 0.8, "gamma": 0.25, "include": None}
    config = {"architectures": [architecture], "model_type": "bert", "transformers_version": "5.23.0"}
    if fmt != "masks":
        config["auto_map"] = {"AutoModel": f"hf_prune_loader.HfPrune{architecture}"}
    _write_json(folder, "pruning_report.json", report)
    _write_json(folder, "hf_prune_export.json", manifest)
    _write_json(folder, "hf_prune_config.json", settings)
    _write_json(folder, "config.json", config)
    return folder


def results(*tasks: str) -> list[TaskResult]:
    return [
        TaskResult(
            task=task,
            dataset_type=f"vader_{task}",
            metric_type="accuracy",
            value=round(0.8 + 0.01 * i, 4),
            num_examples=2000,
            dense_value=0.88,
        )
        for i, task in enumerate(tasks)
    ]


def load(path: str) -> ModelCard:
    assert os.path.basename(path) == "README.md" and os.path.isfile(path)
    return ModelCard.load(path)  # a local file: no network


def check_common(card: ModelCard, folder: str, *, method: str, pipeline: bool = True) -> None:
    """What every card must have: Hub metadata, the plot, loading code, citations, no empty slot."""
    data = card.data
    for tag in ("hf-prune", "pruned", "sparsity", method):
        assert tag in data.tags
    assert bool(data.pipeline_tag) == pipeline and data.license and data.library_name
    assert "![" in card.text and f"]({PLOT_FILE_NAME})" in card.text
    assert os.path.getsize(os.path.join(folder, PLOT_FILE_NAME)) > 1000
    assert "arXiv:1909.12486" in card.text and "2112.05705" in card.text  # RPP and multitask papers
    assert "hf_prune.load_pruned(" in card.text
    assert "None" not in card.text and "| |" not in card.text and "||" not in card.text.replace("\\|", "")
    assert not re.search(r"\{\{|\{%", card.text)  # nothing left unrendered
    manifest = json.load(open(os.path.join(folder, "hf_prune_export.json"), encoding="utf-8"))
    assert {"README.md", PLOT_FILE_NAME} <= set(manifest["files"])  # so push_pruned uploads the card


def test_single_task_compact_card(compact_export: str) -> None:
    info = CardInfo(base_model=MINILM, repo_id="me/minilm-magnitude-50", eval_results=results("movie_sentiment"))
    card = load(write_card(compact_export, info))
    check_common(card, compact_export, method="magnitude")
    data = card.data
    assert data.base_model == MINILM and data.license == "apache-2.0"  # inherited from the base model
    assert data.base_model_relation == "finetune"
    assert data.library_name == "transformers" and "custom_code" in data.tags
    assert data.pipeline_tag == "text-classification"
    [result] = data.eval_results
    assert (result.task_name, result.dataset_type, result.metric_type, result.metric_value) == (
        "movie_sentiment",
        "vader_movie_sentiment",
        "accuracy",
        0.8,
    )
    assert data.model_name == "minilm-magnitude-50"
    text = card.text
    assert "## Pruning" in text and "| `target_sparsity` | 0.5 |" in text
    assert "| 0 | 50.0% | 50.0% |" in text  # per-layer table
    assert "37,922 | 29,730" in text  # parameters before -> after
    assert (
        'AutoModelForSequenceClassification.from_pretrained("me/minilm-magnitude-50", trust_remote_code=True)' in text
    )
    assert "± 0.0089 (binomial, n = 2,000)" in text and "| 0.88 |" in text
    assert "| transformers |" in text  # framework versions from the manifest


def test_rank_factored_card(factored_export: str) -> None:
    card = load(write_card(factored_export, CardInfo(base_model=MINILM, eval_results=results("movie_sentiment"))))
    check_common(card, factored_export, method="rank")
    assert "low-rank" in card.data.tags and card.data.base_model_relation == "finetune"
    text = card.text
    assert "### Kept rank per matrix" in text and re.search(r"\| 0 \| \d+ / 32 \|", text)
    assert "parameters removed" in text and "![Kept rank per layer]" in text
    assert "achieved share of parameters kept" in text
    assert "Structured Pruning of Large Language Models" in text  # the method's own paper


@pytest.mark.parametrize("fmt", ["compact", "dense"])
def test_layer_table_shows_a_matrix_left_unpruned(tmp_path, fmt: str) -> None:
    """A layer whose query matrix ``include`` leaves out: its cell says "not pruned", the rest as usual."""
    model = tiny_model()
    include = [r"layer\.0\.", r"layer\.1\.(?!attention\.self\.query)"]  # all of layer 0; layer 1 but its query
    method = create_method(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=1, include=include))
    method.attach(model)
    method.begin(2)
    method.step(1)
    method.step(2)
    folder = str(tmp_path / fmt)
    save_pruned(model, folder, method, format=fmt)
    card = load(write_card(folder))
    text = card.text
    assert "| layer | `attention.self.query` | `attention.self.key` |" in text
    assert "| 0 | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% |" in text
    # the layer's sparsity is over its pruned matrices; sizes are known (manifest or safetensors header)
    assert "| 1 | not pruned | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% | 50.0% |" in text
    assert "weighs the layer's matrices by their number of weights" in text
    assert os.path.getsize(os.path.join(folder, PLOT_FILE_NAME)) > 1000  # the plot leaves the gap empty


def test_multitask_card_from_hand_made_inputs(tmp_path) -> None:
    folder = hand_made_export(str(tmp_path / "multitask"), fmt="compact", method="movement")
    info = CardInfo(
        base_model=MINILM,
        repo_id="me/minilm-multitask",
        task_mixture={"movie_sentiment": 2, "tweet_sentiment": 1, "bbc_topic": 1},
        mixture_sampling="proportional to size, task-homogeneous batches",
        eval_results=results("movie_sentiment", "tweet_sentiment", "bbc_topic"),
        notes="Trained 3 x 600 steps.",
    )
    card = load(write_card(folder, info))
    check_common(card, folder, method="movement")
    data = card.data
    assert "multitask" in data.tags and data.pipeline_tag == "feature-extraction"
    assert [r.task_name for r in data.eval_results] == ["movie_sentiment", "tweet_sentiment", "bbc_topic"]
    text = card.text
    assert "## Task mixture" in text and "| `movie_sentiment` | 2 | 50.0% | accuracy 0.8 |" in text
    assert "proportional to size, task-homogeneous batches" in text and "Trained 3 x 600 steps." in text
    assert 'AutoModel.from_pretrained("me/minilm-multitask", trust_remote_code=True)' in text
    assert "| 5 |" in text  # six layers in the per-layer table
    assert "Movement Pruning: Adaptive Sparsity" in text


def test_masks_card_from_hand_made_inputs(tmp_path) -> None:
    folder = hand_made_export(str(tmp_path / "masks"), fmt="masks", method="rpp")
    card = load(write_card(folder, CardInfo(repo_id="me/minilm-rpp-pattern")))
    check_common(card, folder, method="rpp")
    data = card.data
    assert data.base_model == MINILM and data.license == "apache-2.0"
    assert "base_model_relation" not in data.to_dict()  # no weights: none of the Hub's relations fits
    assert data.library_name == "hf-prune" and data.pipeline_tag == "feature-extraction"
    text = card.text
    assert "no weights" in text and "c9745ed1d9f207416be6d2e6f8de32d1f16199bf" in text
    assert 'FrozenMaskConfig(masks_from="me/minilm-rpp-pattern")' in text
    assert "not measured (the export holds no weights)" in text
    assert "Not evaluated" in text


def test_defaults_are_visible_when_nothing_is_known(compact_export: str, tmp_path) -> None:
    folder = str(tmp_path / "bare")
    hand_made_export(folder, fmt="compact", method="magnitude", layers=1)
    os.remove(os.path.join(folder, "hf_prune_config.json"))
    manifest = json.load(open(os.path.join(folder, "hf_prune_export.json"), encoding="utf-8"))
    del manifest["versions"]
    _write_json(folder, "hf_prune_export.json", manifest)
    card = load(write_card(folder))
    assert card.data.license == "other" and card.data.base_model is None and card.data.eval_results is None
    assert "model_name" not in card.data.to_dict()
    text = card.text
    for visible in (
        "unknown: the metadata says `other`",
        "the export does not record it",
        "Not evaluated",
        "not recorded (no hf_prune_config.json)",
        "<your-username>/bare",
        "Language | not recorded",
        "Training data | not recorded",
    ):
        assert visible in text, visible
    assert "| transformers | 5.23.0 |" in text  # falls back to config.json's version


def test_template_missing_required_field_is_named(tmp_path) -> None:
    folder = hand_made_export(str(tmp_path / "x"), fmt="compact", method="rpp", layers=1)
    with pytest.raises(MissingCardFieldError, match="task_mixture") as err:
        write_card(folder, template="multitask")
    assert err.value.field == "tasks" and isinstance(err.value, InvalidConfigError)
    with pytest.raises(MissingCardFieldError, match="ranks"):
        write_card(folder, template="rank")
    custom = tmp_path / "custom.md"
    custom.write_text("---\n{{ card_data }}\n---\n# {{ model_name }} by {{ author }}\n", encoding="utf-8")
    with pytest.raises(MissingCardFieldError, match="author"):
        write_card(folder, template=str(custom))
    assert not os.path.exists(os.path.join(folder, "README.md"))  # nothing written on a refused card
    with pytest.raises(MissingCardFieldError, match="value"):
        TaskResult(task="t", dataset_type="d", metric_type="accuracy")
    with pytest.raises(MissingCardFieldError, match="dataset_type"):
        CardInfo(eval_results=[{"task": "t", "metric_type": "accuracy", "value": 0.5}])


def test_masks_without_base_model_is_refused(tmp_path) -> None:
    folder = hand_made_export(str(tmp_path / "masks"), fmt="masks", method="rpp", layers=1)
    manifest = json.load(open(os.path.join(folder, "hf_prune_export.json"), encoding="utf-8"))
    del manifest["base_model"]
    _write_json(folder, "hf_prune_export.json", manifest)
    with pytest.raises(MissingCardFieldError, match="base_model"):
        write_card(folder)


def test_custom_template_uses_the_shared_sections(tmp_path) -> None:
    folder = hand_made_export(str(tmp_path / "x"), fmt="compact", method="rpp", layers=1)
    custom = tmp_path / "mine.md"
    custom.write_text("---\n{{ card_data }}\n---\n# Mine: {{ model_name }}\n\n{{ summary() }}\n", encoding="utf-8")
    card = load(write_card(folder, CardInfo(model_name="mine"), template=str(custom)))
    assert card.text.startswith("\n# Mine: mine") or card.text.startswith("# Mine: mine")
    assert "| Method |" in card.text


def test_not_an_export_and_bad_info(tmp_path) -> None:
    with pytest.raises(MissingExportFileError, match="not an hf_prune export"):
        write_card(str(tmp_path))
    with pytest.raises(MissingExportFileError, match="not a folder"):
        write_card(str(tmp_path / "nowhere"))
    folder = hand_made_export(str(tmp_path / "x"), fmt="compact", method="rpp", layers=1)
    with pytest.raises(InvalidConfigError, match="CardInfo"):
        write_card(folder, {"base_model": MINILM})  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="neither one of"):
        write_card(folder, template="fancy")
    broken = tmp_path / "broken.md"
    broken.write_text("---\n{{ card_data }}\n---\n{% if x %}\n", encoding="utf-8")
    with pytest.raises(InvalidConfigError, match=r"not valid Jinja.*line 4"):
        write_card(folder, template=str(broken))
    with pytest.raises(InvalidConfigError, match="task_mixture"):
        CardInfo(task_mixture={"a": -1})
    with pytest.raises(InvalidConfigError, match="repo_id"):
        CardInfo(repo_id="a b/c")


def test_every_template_ships_in_the_package_and_in_model_cards() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in TEMPLATE_NAMES:
        text = read_template(name)
        assert "{{ card_data }}" in text and "requires:" in text
        with open(os.path.join(root, "model_cards", "templates", f"{name}.md"), encoding="utf-8") as handle:
            assert handle.read() == text  # model_cards/templates is the package folder, linked


# ------------------------------------------------------------------ multitask exports (MultitaskModel)
MULTITASK_REPO = f"{USER}/tiny-multitask"
TASKS = [head.name for head in MULTITASK_HEADS]


def multitask_export(folder: str, fmt: str) -> str:
    """A tiny MultitaskModel magnitude-pruned for a few steps on batches of both tasks, exported
    with a card that knows its repo, mixture and per-task results."""
    model = tiny_multitask()
    method = create_method(MagnitudeConfig(target_sparsity=0.5, begin_step=0, end_step=2))
    method.attach(model)
    method.begin(10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(1, 4):
        inputs = torch.randint(3, 100, (4, 8), generator=generator)
        task_ids = torch.tensor([0, 1, 0, 1])  # labels 0/1 fit both heads (2 and 3 classes)
        model(input_ids=inputs, labels=torch.tensor([0, 1, 1, 0]), task_ids=task_ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        method.step(step, optimizer)
    info = CardInfo(
        base_model=MINILM,
        repo_id=MULTITASK_REPO,
        task_mixture={"sentiment": 2, "topic": 1},
        eval_results=results(*TASKS),
    )
    save_pruned(model, folder, method, format=fmt, card=info)
    return folder


@pytest.fixture(scope="module")
def multitask_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("multitask-cards")
    return {fmt: multitask_export(str(root / fmt), fmt) for fmt in ("dense", "compact")}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def run_block(code: str) -> dict:
    namespace: dict = {}
    exec(compile(code, "<card snippet>", "exec"), namespace)  # the card's code, as printed
    return namespace


def task_logits(model: torch.nn.Module, task: str | None = None) -> torch.Tensor:
    """Logits on a fixed batch: of a stock model, or of ``task`` through the shared MultitaskModel."""
    inputs = torch.randint(3, 100, (3, 8), generator=torch.Generator().manual_seed(1))
    extra = {}
    if isinstance(model, MultitaskModel):
        extra["task_ids"] = torch.full((3,), model.task_index(str(task)))
    with torch.no_grad():
        return model.eval()(input_ids=inputs, attention_mask=torch.ones_like(inputs), **extra).logits


def check_task_models(models: dict, shared: MultitaskModel) -> None:
    """A snippet's ``models`` are every task's stock model, each the shared model's task exactly."""
    assert sorted(models) == sorted(TASKS)
    for name, model in models.items():
        assert type(model).__name__ == "BertForSequenceClassification"
        assert model.config.num_labels == shared.task_head(name).num_labels
        expected = task_logits(shared, name)[:, : model.config.num_labels]
        assert torch.allclose(task_logits(model), expected, atol=1e-6)


@pytest.mark.parametrize("fmt", ["dense", "compact"])
def test_multitask_card_lists_every_task_model_and_how_to_load_it(multitask_exports: dict[str, str], fmt: str) -> None:
    folder = multitask_exports[fmt]
    card = load(os.path.join(folder, "README.md"))
    check_common(card, folder, method="magnitude", pipeline=False)
    data = card.data
    # A MultitaskModel: no pipeline fits it, and only hf_prune loads it.
    assert "multitask" in data.tags and data.pipeline_tag is None and data.library_name == "hf-prune"
    assert [r.task_name for r in data.eval_results] == TASKS
    text = card.text
    assert "## Per-task models" in text and "identical, bit for bit" in text and "encoder once" in text
    report = json.load(open(os.path.join(folder, "pruning_report.json"), encoding="utf-8"))
    for name, classes in (("sentiment", "2: negative, positive"), ("topic", "3: a, b, c")):
        entry = report["tasks"][name]
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` | [`tasks/{name}/`]"))
        assert f"(tasks/{name}/README.md)" in row and classes in row
        assert f"{entry['parameters']['total']:,}" in row and f"{entry['saved_sparsity']:.1%}" in row
        assert f'hf_prune.load_pruned(repo, subfolder="tasks/{name}")' in text
        if fmt == "dense":
            assert f'AutoModelForSequenceClassification.from_pretrained(repo, subfolder="tasks/{name}")' in text
        else:
            assert f'"{name}": "tasks/{name}",' in text and "trust_remote_code=True" in text
    assert 'AutoModel.from_pretrained("' not in text  # it would load a bare encoder with fresh weights
    # The shared model: MultitaskModel.from_pretrained for dense (load_pruned of a dense Hub repo goes
    # through transformers, which lacks the class), load_pruned for the formats it decodes.
    shared = "MultitaskModel.from_pretrained" if fmt == "dense" else "hf_prune.load_pruned"
    assert f'model = {shared}("{MULTITASK_REPO}")' in text

    for name in TASKS:
        task_folder = os.path.join(folder, "tasks", name)
        task_card = load(os.path.join(task_folder, "README.md"))
        check_common(task_card, task_folder, method="magnitude")
        assert task_card.data.pipeline_tag == "text-classification" and task_card.data.library_name == "transformers"
        assert [r.task_name for r in task_card.data.eval_results] == [name]
        task_text = task_card.text
        [other] = [task for task in TASKS if task != name]
        assert "## Part of a multitask export" in task_text and "(../../README.md)" in task_text
        assert f"[`{other}`](../{other}/README.md)" in task_text  # the sibling, linked
        assert f'hf_prune.load_pruned("{MULTITASK_REPO}", subfolder="tasks/{name}")' in task_text
        assert f"# {name}" not in task_text and f"(task {name})" in task_text


@pytest.mark.parametrize("fmt", ["dense", "compact"])
def test_multitask_card_snippets_run_on_the_local_folder(multitask_exports: dict[str, str], fmt: str) -> None:
    """Every snippet that takes a local folder runs as printed with the folder for the repo id
    (the snapshot_download ones need a Hub: the next test runs those)."""
    folder = multitask_exports[fmt]
    shared = load_pruned(folder)
    assert isinstance(shared, MultitaskModel)
    blocks = [
        block.replace(f'"{MULTITASK_REPO}"', json.dumps(folder))
        for block in python_blocks(open(os.path.join(folder, "README.md"), encoding="utf-8").read())
    ]
    local = [block for block in blocks if "snapshot_download" not in block]
    assert len(local) == (3 if fmt == "dense" else 2)
    for block in local:
        namespace = run_block(block)
        if "models" in namespace:
            check_task_models(namespace["models"], shared)
        else:
            assert isinstance(namespace["model"], MultitaskModel)
            assert type(namespace["task_model"]).__name__ == "BertForSequenceClassification"
    # What the snapshot_download snippet loads once the folder is here: the folder, by path.
    from transformers import AutoModelForSequenceClassification

    extra = {"trust_remote_code": True} if fmt == "compact" else {}
    models = {
        name: AutoModelForSequenceClassification.from_pretrained(os.path.join(folder, "tasks", name), **extra)
        for name in TASKS
    }
    check_task_models(models, shared)


@pytest.mark.parametrize("fmt", ["dense", "compact"])
def test_multitask_card_snippets_run_against_the_hub(
    multitask_exports: dict[str, str], fmt: str, local_hub: HubServer
) -> None:
    """The cards' code as printed, repo id and all, on the export uploaded to the local test Hub."""
    from huggingface_hub import HfApi

    folder = multitask_exports[fmt]
    api = HfApi()
    api.create_repo(MULTITASK_REPO, exist_ok=True)
    # hf_prune.push_pruned does not upload the tasks/ folders (yet): upload the export as it is.
    api.upload_folder(repo_id=MULTITASK_REPO, folder_path=folder, commit_message="multitask export")
    shared = load_pruned(folder)
    for block in python_blocks(open(os.path.join(folder, "README.md"), encoding="utf-8").read()):
        namespace = run_block(block)
        if "models" in namespace:
            check_task_models(namespace["models"], shared)
        else:
            assert isinstance(namespace["model"], MultitaskModel)
    for name in TASKS:
        task_readme = os.path.join(folder, "tasks", name, "README.md")
        blocks = python_blocks(open(task_readme, encoding="utf-8").read())
        assert len(blocks) == 2  # transformers (plain or through remote code) and hf_prune
        for block in blocks:
            model = run_block(block)["model"]
            assert type(model).__name__ == "BertForSequenceClassification"
            expected = task_logits(shared, name)[:, : model.config.num_labels]
            assert torch.allclose(task_logits(model), expected, atol=1e-6)


def test_example_cards_render_again_as_the_export_wrote_them(multitask_exports: dict[str, str], tmp_path) -> None:
    """model_cards/render_examples.py renders an export's cards again from its files and what its
    card recorded: with this hf_prune, the same cards, laid out as in the export."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "render_examples", os.path.join(root, "model_cards", "render_examples.py")
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = multitask_exports["dense"]
    before = {path: open(path, "rb").read() for path in (os.path.join(folder, "tasks", "topic", "README.md"),)}
    target = script.render_example(folder, str(tmp_path / "examples"))
    assert os.path.basename(target) == "tiny-multitask"  # the card's model name
    for relative in ("", "tasks/sentiment", "tasks/topic"):
        with open(os.path.join(folder, relative, "README.md"), encoding="utf-8") as handle:
            original = handle.read()
        with open(os.path.join(target, relative, "README.md"), encoding="utf-8") as handle:
            assert handle.read() == original, relative
        assert os.path.getsize(os.path.join(target, relative, PLOT_FILE_NAME)) > 1000
    assert sorted(os.listdir(target)) == ["README.md", PLOT_FILE_NAME, "tasks"]
    assert all(open(path, "rb").read() == data for path, data in before.items())  # the export is untouched
