"""The multitask model: a shared encoder, the architecture's own head per task, save/load, and its errors."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    RobertaConfig,
)

from hf_prune.errors import InvalidConfigError
from hf_prune.multitask import MultitaskModel, TaskHead
from hf_prune.targets import find_targets

from .common import HIDDEN, VOCAB, input_ids

HEADS = [TaskHead("sentiment", ("negative", "positive")), TaskHead("intensity", (), "regression")]
CONFIGS = {
    "bert": BertConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    ),
    "roberta": RobertaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    ),
    "distilbert": DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=1, n_heads=2, hidden_dim=64),
}


def _model(arch: str = "bert", heads=HEADS, seed: int = 0) -> MultitaskModel:
    torch.manual_seed(seed)
    return MultitaskModel.from_encoder_config(CONFIGS[arch], heads)


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_each_task_model_is_the_stock_class_sharing_one_encoder(arch):
    model = _model(arch)
    stock = AutoModelForSequenceClassification.from_config(CONFIGS[arch])
    for name, task_model in model.task_models():
        assert type(task_model) is type(stock)
        assert task_model.base_model is model.encoder
        # The stock class's keys exactly, so it saves as a stock checkpoint.
        assert sorted(task_model.state_dict()) == sorted(stock.state_dict()), name
    # Parameters counted once: the encoder plus each head's own.
    encoder = sum(p.numel() for p in model.encoder.parameters())
    heads = sum(p.numel() for p in model.heads.parameters())
    assert sum(p.numel() for p in model.parameters()) == encoder + heads


def test_pruning_targets_are_in_the_shared_encoder_only():
    model = _model()
    names = list(find_targets(model))
    assert names and all(name.startswith("encoder.") for name in names)


def test_a_mixed_batch_gives_each_row_its_own_task_loss_and_logits():
    model = _model()
    model.eval()
    ids = input_ids(batch=4)
    task_ids = torch.tensor([0, 1, 0, 1])
    labels = torch.tensor([1.0, 0.5, 0.0, -0.25])
    out = model(input_ids=ids, labels=labels, task_ids=task_ids)
    sentiment = model.task_model("sentiment")(input_ids=ids[[0, 2]], labels=torch.tensor([1, 0]))
    intensity = model.task_model("intensity")(input_ids=ids[[1, 3]], labels=torch.tensor([0.5, -0.25]))
    torch.testing.assert_close(out.loss, (sentiment.loss + intensity.loss) / 2)
    torch.testing.assert_close(out.logits[[0, 2]], sentiment.logits)
    torch.testing.assert_close(out.logits[[1, 3], :1], intensity.logits)
    assert torch.isnan(out.logits[[1, 3], 1]).all()  # the regression head has one output
    out.loss.backward()  # gradients reach the shared encoder and both heads
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None
    assert all(p.grad is not None for p in model.heads.parameters() if p.requires_grad)


def test_save_and_load_back_give_the_same_outputs(tmp_path):
    model = _model().eval()
    model.save_pretrained(tmp_path)
    loaded = MultitaskModel.from_pretrained(tmp_path).eval()
    assert loaded.task_names == model.task_names
    ids = input_ids()
    for task_id in range(2):
        task_ids = torch.full((len(ids),), task_id)
        torch.testing.assert_close(
            loaded(input_ids=ids, task_ids=task_ids).logits, model(input_ids=ids, task_ids=task_ids).logits
        )


def test_a_task_model_saves_as_a_checkpoint_transformers_loads_alone(tmp_path):
    model = _model().eval()
    model.task_model("sentiment").save_pretrained(tmp_path)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(plain) is BertForSequenceClassification and plain.config.id2label == {0: "negative", 1: "positive"}
    ids = input_ids()
    expected = model(input_ids=ids, task_ids=torch.zeros(len(ids), dtype=torch.long)).logits
    torch.testing.assert_close(plain(input_ids=ids).logits, expected)


def test_from_encoder_starts_every_head_from_the_pretrained_encoder(tmp_path):
    torch.manual_seed(0)
    BertForSequenceClassification(CONFIGS["bert"]).save_pretrained(tmp_path)
    model = MultitaskModel.from_encoder(str(tmp_path), HEADS)
    pretrained = BertForSequenceClassification.from_pretrained(tmp_path)
    for key, value in pretrained.bert.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    assert model.task_model("intensity").config.problem_type == "regression"


# ----------------------------------------------------------------------------- bad input
def test_duplicate_task_names_are_refused():
    with pytest.raises(InvalidConfigError, match="'sentiment' appears twice"):
        _model(heads=[HEADS[0], HEADS[0]])


@pytest.mark.parametrize(
    "head, message",
    [
        (TaskHead("one_class", ("only",)), "needs at least 2"),
        (TaskHead("reg", ("a", "b"), "regression"), "regression task but has class names"),
        (TaskHead("bad name", ("a", "b")), "not usable as a head name"),
        (TaskHead("kind", ("a", "b"), "ranking"), "'ranking' is not"),  # type: ignore[arg-type]
    ],
)
def test_a_head_that_cannot_be_built_is_refused_by_name(head, message):
    with pytest.raises(InvalidConfigError, match=message):
        _model(heads=[head])


def test_an_empty_task_list_is_refused():
    with pytest.raises(InvalidConfigError, match="non-empty list of tasks"):
        _model(heads=[])


def test_task_ids_are_required_with_several_tasks_and_checked():
    model = _model()
    with pytest.raises(ValueError, match="pass task_ids"):
        model(input_ids=input_ids())
    with pytest.raises(ValueError, match="task ids are 0..1"):
        model(input_ids=input_ids(), task_ids=torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="one per row"):
        model(input_ids=input_ids(), task_ids=torch.tensor([0, 1]))


def test_a_config_without_tasks_is_not_a_multitask_config():
    with pytest.raises(InvalidConfigError, match="no 'hf_prune_multitask' task list"):
        MultitaskModel(CONFIGS["bert"])


def test_unknown_task_name_lists_the_tasks():
    with pytest.raises(KeyError, match="its tasks: \\['sentiment', 'intensity'\\]"):
        _model().task_model("topic")
