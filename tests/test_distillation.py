"""Knowledge distillation while pruning (issue 12): the loss against a hand computation, both Trainer
paths bit-identical for every method, the teacher untouched, multitask rows distilled from their own
task's head, gradient accumulation, the logits cache, recipes, and every bad input."""

from __future__ import annotations

import copy
import math
import os

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, Trainer, default_data_collator

from hf_prune import DistillationCallback, DistillationConfig, PruningCallback, PruningTrainer
from hf_prune.errors import DataUnavailableError, DistillationSetupError, InvalidConfigError, TeacherMismatchError
from hf_prune.multitask import MultitaskModel, MultitaskPruningTrainer, TaskHead
from hf_prune.recipe import Recipe, run_recipe

from .common import (
    METHODS,
    VOCAB,
    assert_states_equal,
    method_state,
    model_state,
    tiny_bert,
    tiny_dataset,
    tiny_multitask,
    tiny_multitask_dataset,
    training_args,
)
from .test_tasks_and_recipes import _write_recipe, fake_data, tiny_model_dir  # noqa: F401  (fixtures)


def _no_dropout(model: nn.Module) -> nn.Module:
    """Dropout off: one forward in train mode is then deterministic (hand computations, 2x4 vs 1x8)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model


def _bert(seed: int = 0, **changes) -> BertForSequenceClassification:
    config = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    config.update(changes)
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**config))


def _teacher(seed: int = 5) -> BertForSequenceClassification:
    """A tiny teacher with confident outputs (a random one is near-uniform, so KL would be ~0)."""
    teacher = tiny_bert(seed)
    with torch.no_grad():
        teacher.classifier.weight.mul_(20)
    return teacher


def _batch(dataset, rows) -> dict[str, torch.Tensor]:
    return default_data_collator([dataset[i] for i in rows])


def _stock(model, args, dataset, config, pruning=None, **kwargs):
    """A stock Trainer with the distillation callback as callback and loss (+ a pruning callback)."""
    distill = DistillationCallback(config)
    callbacks = [PruningCallback(pruning), distill] if pruning is not None else [distill]
    trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=callbacks, compute_loss_func=distill)
    return trainer, distill


# ----------------------------------------------------------------------------- the loss, by hand
def _log_softmax(row: list[float], temperature: float = 1.0) -> list[float]:
    scaled = [v / temperature for v in row]
    top = max(scaled)
    norm = top + math.log(sum(math.exp(v - top) for v in scaled))
    return [v - norm for v in scaled]


def test_classification_loss_matches_a_hand_computation(tmp_path):
    student, teacher = _no_dropout(tiny_bert()), _teacher()
    alpha, temperature = 0.3, 3.0
    config = DistillationConfig(teacher=teacher, alpha=alpha, temperature=temperature)
    trainer = PruningTrainer(
        model=student, args=training_args(tmp_path), train_dataset=tiny_dataset(), distillation=config
    )
    batch = _batch(tiny_dataset(), [0, 1, 40, 41])
    with torch.no_grad():
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.tolist()
        t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.tolist()
    expected = 0.0
    for row, label in enumerate(batch["labels"].tolist()):
        ce = -_log_softmax(s[row])[label]
        log_ps, log_pt = _log_softmax(s[row], temperature), _log_softmax(t[row], temperature)
        kl = sum(math.exp(lt) * (lt - ls) for lt, ls in zip(log_pt, log_ps))
        expected += (1 - alpha) * ce + alpha * temperature**2 * kl
    assert expected > 0.5  # the teacher disagrees enough for the KL term to matter
    student.train()
    # num_items_in_batch: the labelled rows of the whole accumulated batch (here 2 x 4).
    loss = trainer.compute_loss(student, dict(batch), num_items_in_batch=torch.tensor(8))
    assert loss.item() == pytest.approx(expected / 8, rel=1e-5)
    # In evaluation the loss is the task loss alone (comparable with runs without distillation).
    student.eval()
    eval_loss = trainer.compute_loss(student, dict(batch), num_items_in_batch=torch.tensor(4))
    ce_mean = sum(-_log_softmax(s[r])[label] for r, label in enumerate(batch["labels"].tolist())) / 4
    assert eval_loss.item() == pytest.approx(ce_mean, rel=1e-5)


def test_regression_and_hidden_state_terms_match_a_hand_computation(tmp_path):
    student, teacher = _no_dropout(_bert(0, num_labels=1)), _bert(5, num_labels=1)
    alpha, weight, layers = 0.4, 0.7, [0, 2]
    config = DistillationConfig(teacher=teacher, alpha=alpha, hidden_weight=weight, hidden_layers=layers)
    trainer = PruningTrainer(
        model=student, args=training_args(tmp_path), train_dataset=tiny_dataset(), distillation=config
    )
    ids = torch.randint(3, VOCAB, (3, 6), generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])
    labels = torch.tensor([0.5, -1.0, 2.0])
    with torch.no_grad():
        s = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        t = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    expected = 0.0
    for row in range(3):
        sv, tv, y = s.logits[row, 0].item(), t.logits[row, 0].item(), labels[row].item()
        expected += (1 - alpha) * (sv - y) ** 2 + alpha * (sv - tv) ** 2
        tokens = [k for k in range(6) if mask[row, k]]
        per_layer = [
            sum(((s.hidden_states[i][row, k] - t.hidden_states[i][row, k]) ** 2).mean().item() for k in tokens)
            / len(tokens)
            for i in layers
        ]
        expected += weight * sum(per_layer) / len(per_layer)
    student.train()
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    loss = trainer.compute_loss(student, inputs, num_items_in_batch=torch.tensor(3))
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)


def test_multitask_rows_are_distilled_from_their_own_task_head(tmp_path):
    student, teacher = _no_dropout(tiny_multitask(0)), tiny_multitask(5)
    with torch.no_grad():
        for name in teacher.task_names:
            teacher.heads[name].classifier.weight.mul_(20)
    config = DistillationConfig(teacher=teacher, alpha=0.6, temperature=2.0)
    dataset = tiny_multitask_dataset()
    trainer = MultitaskPruningTrainer(
        model=student, args=training_args(tmp_path), train_dataset=dataset, distillation=config
    )
    batch = _batch(dataset, range(6))  # task ids 0, 1, 0, 1, ...: a mixed batch, logits NaN-padded
    with torch.no_grad():
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], task_ids=batch["task_ids"])
        t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], task_ids=batch["task_ids"])
    assert torch.isnan(s.logits).any()
    expected = 0.0
    for row, (task, label) in enumerate(zip(batch["task_ids"].tolist(), batch["labels"].tolist())):
        width = student.heads_spec[task].num_labels  # 2 for sentiment, 3 for topic
        srow, trow = s.logits[row, :width].tolist(), t.logits[row, :width].tolist()
        log_ps, log_pt = _log_softmax(srow, 2.0), _log_softmax(trow, 2.0)
        kl = sum(math.exp(lt) * (lt - ls) for lt, ls in zip(log_pt, log_ps))
        expected += 0.4 * -_log_softmax(srow)[label] + 0.6 * 4.0 * kl
    student.train()
    loss = trainer.compute_loss(student, dict(batch), num_items_in_batch=torch.tensor(6))
    assert math.isfinite(loss.item())
    assert loss.item() == pytest.approx(expected / 6, rel=1e-5)


# ----------------------------------------------------------------------------- the two paths
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_stock_trainer_path_equals_pruning_trainer_path(tmp_path, method_name):
    case, teacher = METHODS[method_name], _teacher()
    config = DistillationConfig(teacher=teacher, alpha=0.5, temperature=2.0, hidden_weight=0.5)
    runs = {}
    for path in ("trainer", "stock"):
        model = case.model("bert")
        args = training_args(tmp_path / path, max_steps=6, logging_steps=3)
        if path == "trainer":
            trainer = PruningTrainer(
                model=model, args=args, train_dataset=tiny_dataset(), pruning=case.config(), distillation=config
            )
            method = trainer.pruning_method
        else:
            pruning = PruningCallback(case.config())
            distill = DistillationCallback(config)
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=tiny_dataset(),
                callbacks=[pruning, distill],
                compute_loss_func=distill,
            )
            method = pruning.method
        trainer.train()
        logs = [{k: v for k, v in e.items() if k.startswith(("distill/", "loss"))} for e in trainer.state.log_history]
        runs[path] = (model_state(model), method_state(method), logs)
    assert_states_equal(runs["stock"][0], runs["trainer"][0], "model weights")
    assert_states_equal(runs["stock"][1], runs["trainer"][1], "method state")
    assert runs["stock"][2] == runs["trainer"][2]
    assert all(
        {"distill/task_loss", "distill/distill_loss", "distill/hidden_loss"} <= set(e) for e in runs["stock"][2][:2]
    )


def test_multitask_trainer_and_stock_trainer_distil_identically(tmp_path):
    teacher = tiny_multitask(5)
    config = DistillationConfig(teacher=teacher, alpha=0.5, hidden_weight=0.3)
    states = []
    for path in ("trainer", "stock"):
        model, args = tiny_multitask(0), training_args(tmp_path / path, max_steps=5)
        if path == "trainer":
            trainer = MultitaskPruningTrainer(
                model=model,
                args=args,
                train_dataset=tiny_multitask_dataset(),
                pruning=METHODS["magnitude"].config(),
                distillation=config,
            )
        else:
            trainer, _ = _stock(model, args, tiny_multitask_dataset(), config, METHODS["magnitude"].config())
        trainer.train()
        states.append(model_state(model))
    assert_states_equal(states[1], states[0], "multitask weights")


# ----------------------------------------------------------------------------- the teacher stays as it was
def test_teacher_is_frozen_on_the_students_device_and_never_saved(tmp_path):
    teacher = _teacher()
    teacher.train()  # a teacher handed over in train mode is put in eval mode
    before = model_state(teacher)
    config = DistillationConfig(teacher=teacher, hidden_weight=0.5)
    args = training_args(tmp_path, max_steps=4, save_strategy="steps", save_steps=4)
    trainer = PruningTrainer(
        model=tiny_bert(),
        args=args,
        train_dataset=tiny_dataset(),
        pruning=METHODS["magnitude"].config(),
        distillation=config,
    )
    trainer.train()
    assert_states_equal(model_state(teacher), before, "teacher weights")
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    in_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in teacher.parameters()}
    assert in_optimizer  # the student's parameters are there
    assert not any(name.startswith("teacher") for name in trainer.pruning_method.targets)
    assert next(teacher.parameters()).device == next(trainer.model.parameters()).device
    saved = load_file(os.path.join(tmp_path, "checkpoint-4", "model.safetensors"))
    assert set(saved) == set(trainer.model.state_dict())  # the student's tensors only


def test_teacher_loads_from_a_folder_like_the_model_it_was_saved_from(tmp_path):
    teacher = _teacher()
    teacher.save_pretrained(tmp_path / "teacher")
    states = []
    for given in (teacher, str(tmp_path / "teacher")):
        model = tiny_bert()
        config = DistillationConfig(teacher=given, alpha=0.5)
        PruningTrainer(
            model=model,
            args=training_args(tmp_path / "run", max_steps=3),
            train_dataset=tiny_dataset(),
            distillation=config,
        ).train()
        states.append(model_state(model))
    assert_states_equal(states[1], states[0], "student taught by a loaded teacher")
    # A multitask teacher loads as a MultitaskModel.
    tiny_multitask(5).save_pretrained(tmp_path / "mt-teacher")
    callback = DistillationCallback(DistillationConfig(teacher=str(tmp_path / "mt-teacher")))
    callback.attach(tiny_multitask(0))
    assert isinstance(callback.teacher, MultitaskModel) and callback.teacher.task_names == ["sentiment", "topic"]


def test_a_model_built_by_model_init_is_distilled_too(tmp_path):
    config = DistillationConfig(teacher=_teacher(), alpha=0.5)
    trainer = PruningTrainer(
        model_init=lambda: tiny_bert(),
        args=training_args(tmp_path, max_steps=3),
        train_dataset=tiny_dataset(),
        distillation=config,
    )
    trainer.train()
    assert trainer.state.log_history[-1]["train_loss"] > 0
    assert trainer.distillation_callback._student is trainer.model


# ----------------------------------------------------------------------------- gradient accumulation
def _accumulated(tmp_path, batch: int, steps: int, distillation: DistillationConfig | None):
    model = _no_dropout(tiny_bert())
    args = training_args(tmp_path, max_steps=3, per_device_train_batch_size=batch, gradient_accumulation_steps=steps)
    PruningTrainer(model=model, args=args, train_dataset=tiny_dataset(), distillation=distillation).train()
    return model_state(model)


def test_gradient_accumulation_2x4_equals_1x8(tmp_path):
    config = DistillationConfig(teacher=_no_dropout(_teacher()), alpha=0.5, hidden_weight=0.5)
    one = _accumulated(tmp_path / "1x8", 8, 1, config)
    two = _accumulated(tmp_path / "2x4", 4, 2, config)
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5, msg=key)
    # alpha=0 trains as the Trainer's own loss does, with accumulation too (PruningTrainer averages a
    # stock classifier's micro-batch losses: hf_prune.loss_scaling).
    plain = _accumulated(tmp_path / "plain", 8, 1, None)
    task_only = _accumulated(tmp_path / "alpha0", 4, 2, DistillationConfig(teacher=_teacher(), alpha=0.0))
    for key, value in plain.items():
        torch.testing.assert_close(task_only[key], value, rtol=1e-4, atol=1e-5, msg=key)


# ----------------------------------------------------------------------------- the logits cache
def test_cached_teacher_logits_train_like_on_the_fly_ones(tmp_path):
    states, callbacks = [], []
    for cache in (False, True):
        model = tiny_bert()
        config = DistillationConfig(teacher=_teacher(), alpha=0.7, cache_teacher_logits=cache)
        trainer = PruningTrainer(
            model=model,
            args=training_args(tmp_path / str(cache), max_steps=16),
            train_dataset=tiny_dataset(),
            distillation=config,
        )
        trainer.train()  # 64 rows, batch 8: two epochs
        states.append(model_state(model))
        callbacks.append(trainer.distillation_callback)
    assert callbacks[0].cache is None
    assert (callbacks[1].cache.misses, callbacks[1].cache.hits, len(callbacks[1].cache)) == (64, 64, 64)
    for key, value in states[0].items():
        torch.testing.assert_close(states[1][key], value, rtol=1e-4, atol=1e-5, msg=key)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"alpha": 1.5}, InvalidConfigError, r"alpha=1.5 is outside its valid range \[0.0, 1.0\]"),
        ({"alpha": "0.5"}, InvalidConfigError, "alpha='0.5' has type str, expected float"),
        ({"temperature": 0}, InvalidConfigError, r"temperature=0 is outside its valid range \(0.0, inf\)"),
        ({"hidden_weight": -1.0}, InvalidConfigError, "hidden_weight=-1.0 is outside"),
        ({"temprature": 2.0}, InvalidConfigError, "did you mean 'temperature'"),
        ({"T": 2.0}, InvalidConfigError, "'T': use 'temperature'"),
        ({"hidden_layers": []}, InvalidConfigError, r"hidden_layers=\[\] names no hidden state"),
        ({"hidden_layers": [1, 1], "hidden_weight": 1.0}, InvalidConfigError, "must be distinct and >= 0"),
        ({"hidden_layers": [-1], "hidden_weight": 1.0}, InvalidConfigError, "must be distinct and >= 0"),
        ({"hidden_layers": [1]}, InvalidConfigError, "has no effect with hidden_weight=0"),
        ({"hidden_layers": "all", "hidden_weight": 1.0}, InvalidConfigError, "hidden_layers='all' has type str"),
        ({"cache_teacher_logits": True, "hidden_weight": 1.0}, InvalidConfigError, "only logits are cached"),
        ({"teacher": 3}, InvalidConfigError, "teacher=3 has type int, expected str or Module"),
        ({"teacher": " "}, InvalidConfigError, "teacher is empty"),
        ({"teacher": "./no/such/teacher"}, DataUnavailableError, "teacher: model './no/such/teacher'.*does not exist"),
    ],
)
def test_bad_configs_are_refused_when_built(kwargs, error, message):
    with pytest.raises(error, match=message):
        DistillationConfig(**{"teacher": nn.Identity(), **kwargs})


def test_config_takes_keyword_arguments_only():
    with pytest.raises(InvalidConfigError, match="keyword arguments only"):
        DistillationConfig(nn.Identity())  # type: ignore[misc]


def _mt_teacher(heads) -> MultitaskModel:
    return MultitaskModel.from_encoder_config(tiny_multitask().config, heads)


@pytest.mark.parametrize(
    "student, teacher, config, message",
    [
        (
            tiny_bert,
            lambda: _bert(5, num_labels=3),
            {},
            "teacher's head has num_labels=3 and the student's num_labels=2",
        ),
        (tiny_bert, lambda: _bert(5, vocab_size=120), {}, "teacher's vocabulary has 120 tokens and the student's 100"),
        (
            tiny_bert,
            lambda: _bert(5, num_hidden_layers=3),
            {"hidden_weight": 1.0},
            "the student has 2 layers and the teacher 3",
        ),
        (
            tiny_bert,
            lambda: _bert(5, hidden_size=48),
            {"hidden_weight": 1.0, "hidden_layers": [1]},
            "student's hidden_size is 32 and the teacher's 48",
        ),
        (
            tiny_bert,
            lambda: _bert(5, num_hidden_layers=3),
            {"hidden_weight": 1.0, "hidden_layers": [3]},
            r"names hidden states \[3\], but the student has 2 layers and the teacher 3",
        ),
        (tiny_multitask, lambda: _bert(5), {}, "student is a MultitaskModel with tasks.*teacher is a BertForSequence"),
        (
            tiny_multitask,
            lambda: _mt_teacher([TaskHead("sentiment", ("n", "p")), TaskHead("topic", ("a", "b"))]),
            {},
            r"teacher's task heads .*\('topic', 'classification', 2\)\] differ from the student's",
        ),
    ],
)
def test_a_teacher_that_does_not_fit_is_refused_when_the_trainer_is_built(tmp_path, student, teacher, config, message):
    distillation = DistillationConfig(teacher=teacher(), **config)
    dataset = tiny_multitask_dataset() if student is tiny_multitask else tiny_dataset()
    with pytest.raises(TeacherMismatchError, match=message):
        PruningTrainer(model=student(), args=training_args(tmp_path), train_dataset=dataset, distillation=distillation)
    with pytest.raises(TeacherMismatchError, match=message):  # the stock path checks at the same point
        _stock(student(), training_args(tmp_path), dataset, distillation)


def test_the_student_itself_or_its_tensors_as_teacher_are_refused(tmp_path):
    model = tiny_bert()
    for teacher, message in ((model, "teacher is the student model itself"), (copy.copy(model), "shares .* tensors")):
        with pytest.raises(TeacherMismatchError, match=message):
            PruningTrainer(
                model=model,
                args=training_args(tmp_path),
                train_dataset=tiny_dataset(),
                distillation=DistillationConfig(teacher=teacher),
            )


def test_a_multi_label_student_is_refused(tmp_path):
    model = _bert(0, problem_type="multi_label_classification")
    with pytest.raises(InvalidConfigError, match="multi-label classifier"):
        PruningTrainer(
            model=model,
            args=training_args(tmp_path),
            train_dataset=tiny_dataset(),
            distillation=DistillationConfig(teacher=_teacher()),
        )


def test_half_wired_stock_trainers_fail_before_the_first_optimizer_step(tmp_path):
    config = DistillationConfig(teacher=_teacher())
    model = tiny_bert()
    before = model_state(model)
    distill = DistillationCallback(config)  # callback only: the Trainer's own loss would ignore the teacher
    trainer = Trainer(
        model=model, args=training_args(tmp_path, max_steps=2), train_dataset=tiny_dataset(), callbacks=[distill]
    )
    with pytest.raises(DistillationSetupError, match="compute_loss_func=distill"):
        trainer.train()
    assert_states_equal(model_state(model), before, "weights after the refused step")
    # The loss only: it never sees the batch the teacher needs.
    trainer = Trainer(
        model=tiny_bert(),
        args=training_args(tmp_path, max_steps=2),
        train_dataset=tiny_dataset(),
        compute_loss_func=DistillationCallback(config),
    )
    with pytest.raises(DistillationSetupError, match="add it to the Trainer's callbacks too"):
        trainer.train()


def test_pruning_trainer_refuses_distillation_with_its_own_loss_function(tmp_path):
    with pytest.raises(InvalidConfigError, match="distillation= and compute_loss_func= both set the training loss"):
        PruningTrainer(
            model=tiny_bert(),
            args=training_args(tmp_path),
            train_dataset=tiny_dataset(),
            distillation=DistillationConfig(teacher=_teacher()),
            compute_loss_func=lambda outputs, labels, num_items_in_batch=None: outputs.logits.sum(),
        )
    with pytest.raises(InvalidConfigError, match="is not a DistillationConfig"):
        DistillationCallback({"teacher": "x"})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- recipes
@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"teacher": "dense_baseline", "temprature": 2},
            r"unknown key\(s\) \['temprature'\] \(did you mean 'temperature'\?\)",
        ),
        ({"alpha": 0.5}, "distillation.teacher: None is null.*expected 'dense_baseline'"),
        ({"teacher": "dense_baseline", "alpha": 2}, "distillation: alpha=2 is outside"),
        ({"teacher": "dense_baseline", "alpha": "lots"}, "distillation.alpha: 'lots' is a string; expected a number"),
        ("dense_baseline", "distillation: 'dense_baseline' is a string; expected a mapping"),
        ({"teacher": "./missing-teacher"}, "DistillationConfig.teacher: model './missing-teacher'.*does not exist"),
    ],
)
def test_bad_distillation_sections_fail_when_the_recipe_loads(tmp_path, tiny_model_dir, section, message):  # noqa: F811
    path = _write_recipe(tmp_path, tiny_model_dir, distillation=section)
    with pytest.raises((InvalidConfigError, DataUnavailableError), match=message):
        Recipe.from_yaml(path)


def test_recipe_distils_from_its_cached_dense_baseline(tmp_path, fake_data, tiny_model_dir, caplog):  # noqa: F811
    distillation = {"teacher": "dense_baseline", "alpha": 0.5, "temperature": 2.0}
    path = _write_recipe(
        tmp_path, tiny_model_dir, distillation=distillation, pruning={"method": "magnitude", "target_sparsity": 0.5}
    )
    recipe = Recipe.from_yaml(path)
    results = run_recipe(recipe)
    teacher_dir = os.path.join(os.environ["HF_PRUNE_CACHE"], "baselines", f"{recipe.baseline_key()}-model")
    assert results["distillation"]["teacher"] == teacher_dir and results["distillation"]["alpha"] == 0.5
    assert os.path.isfile(os.path.join(teacher_dir, "config.json")) and not results["dense"]["cached"]
    # The second run reuses the saved dense model (and its results); only the pruned model trains.
    saved = os.path.getmtime(os.path.join(teacher_dir, "config.json"))
    again = run_recipe(Recipe.from_yaml(path))
    assert again["dense"]["cached"] and os.path.getmtime(os.path.join(teacher_dir, "config.json")) == saved
    # A teacher given by folder works the same way (here: that saved baseline).
    path = _write_recipe(
        tmp_path,
        tiny_model_dir,
        distillation={"teacher": teacher_dir},
        dense_baseline=False,
        pruning={"method": "magnitude", "target_sparsity": 0.5},
    )
    assert run_recipe(Recipe.from_yaml(path))["distillation"]["teacher"] == teacher_dir


def test_multitask_recipe_distils_each_task_from_the_dense_multitask_baseline(tmp_path, fake_data, tiny_model_dir):  # noqa: F811
    from .test_multitask_recipes import _write_mixture

    path = _write_mixture(tmp_path, tiny_model_dir, distillation={"teacher": "dense_baseline", "hidden_weight": 0.5})
    recipe = Recipe.from_yaml(path)
    results = run_recipe(recipe)
    teacher_dir = os.path.join(os.environ["HF_PRUNE_CACHE"], "baselines", f"{recipe.baseline_key()}-model")
    assert results["distillation"]["teacher"] == teacher_dir
    assert MultitaskModel.from_pretrained(teacher_dir).task_names == recipe.task_names
    assert results["pruned"]["saved_sparsity"] == pytest.approx(0.75, abs=1e-3)
