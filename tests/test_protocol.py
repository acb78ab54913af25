"""The paper's protocol on the tiny encoder: pre-training masks, the SST-3 label view, GLUE SST-2 and EmoInt transfer
(from a pre-trained checkpoint, and the [CLS] baseline), and dev as the sweep objective."""
import json
from pathlib import Path

import pytest
import torch
from fakes import RightBranchingParser
from hydra import compose, initialize_config_dir

from sentibert.commands import train as train_command
from sentibert.config import CONF_DIR, SAMPLE_DATA_DIR
from sentibert.data.labels import relabel
from sentibert.data.spans import TreeDataset
from sentibert.data.tree import UNLABELED, BinaryTree, read_trees
from sentibert.evaluation.metrics import evaluate_predictions
from sentibert.models.encoder import load_tokenizer
from sentibert.models.model import CLSPool, SentiBERT, TreeSentimentModel
from sentibert.models.pretraining import MLM_IGNORE, mask_tokens, sentiment_wordpieces, sst_sentiment_words
from sentibert.training import loop as train

FIXTURE_ROOT = Path(SAMPLE_DATA_DIR)  # the sample treebank shipped in the package (data=fixture)
TINY = ["encoder=tiny", "logger=none", "trainer.lr=1e-3", "trainer.checkpoint_every_n_steps=0"]
SST_TINY = [*TINY, "data=fixture", f"data.root={FIXTURE_ROOT}", "trainer.max_epochs=1"]


pytestmark = pytest.mark.usefixtures("one_thread")


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides))


# ---- pre-training masks -----------------------------------------------------------------------------------------
class FakeTokenizer:
    all_special_ids, mask_token_id = [0, 1], 2

    def __len__(self):
        return 100


def fake_batch(rows: int, length: int, n_sentiment: int):
    """Rows of `length` tokens ([CLS]=0 ... [SEP]=1, ids 10..), the first `n_sentiment` real ones sentiment words."""
    ids = torch.randint(10, 100, (rows, length), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 0, 1
    sentiment = torch.zeros(rows, length, dtype=torch.bool)
    sentiment[:, 1:1 + n_sentiment] = True
    return ids, torch.ones_like(ids), sentiment


@pytest.mark.parametrize("length, cap", [(10, 2), (30, 4), (8, 1), (200, 20)])  # round half to even: 4.5 -> 4
def test_masking_caps_per_sentence(length, cap):
    ids, attention, sentiment = fake_batch(64, length, length - 2)
    # Every real token drawn (probability 1 for sentiment words): the cap alone decides how many are kept.
    masked, labels = mask_tokens(ids, attention, FakeTokenizer(), 0.15, torch.Generator().manual_seed(1),
                                 sentiment, sentiment_probability=1.0, max_predictions=20)
    assert ((labels != MLM_IGNORE).sum(1) == min(20, max(1, round(0.15 * length)))).all()
    assert cap == min(20, max(1, round(0.15 * length)))
    assert (labels[:, [0, -1]] == MLM_IGNORE).all()  # never [CLS] / [SEP]


def test_sentiment_wordpieces_are_masked_at_0_2_and_others_at_0_15():
    # 102 tokens, 20 of them sentiment words: 0.2 * 20 + 0.15 * 80 = 16 drawn on average, the cap is 15 (round(15.3)),
    # so a few are dropped, uniformly: the ratio of the two rates stays 0.2 / 0.15.
    ids, attention, sentiment = fake_batch(2000, 102, 20)
    _, labels = mask_tokens(ids, attention, FakeTokenizer(), 0.15, torch.Generator().manual_seed(2), sentiment,
                            sentiment_probability=0.2, max_predictions=100)
    picked = labels != MLM_IGNORE
    rate_sentiment, rate_other = picked[sentiment].float().mean(), picked[~sentiment][1:-1].float().mean()
    assert rate_sentiment / rate_other == pytest.approx(0.2 / 0.15, rel=0.03)
    assert picked.sum(1).max() <= 15
    _, plain = mask_tokens(ids, attention, FakeTokenizer(), 0.15, torch.Generator().manual_seed(2), None,
                           max_predictions=100)  # no lexicon: one rate for all
    plain_picked = plain != MLM_IGNORE
    assert plain_picked[sentiment].float().mean() == pytest.approx(plain_picked[:, 21:-1].float().mean(), rel=0.05)


def test_sentiment_words_come_from_sst_word_labels_and_map_to_their_wordpieces():
    trees = [BinaryTree.from_ptb("(3 (2 The) (3 (3 Good) (2 film)))"), BinaryTree.from_ptb("(1 (1 awful) (2 .))")]
    lexicon = frozenset(sst_sentiment_words(trees))
    assert lexicon == {"good", "awful"}
    tokenizer = load_tokenizer("tiny")
    dataset = TreeDataset(trees, tokenizer)
    batch = dataset.collate([dataset[0], dataset[1]])
    flags = sentiment_wordpieces(batch, trees, lexicon)
    pieces = [tokenizer.convert_ids_to_tokens(row) for row in batch["input_ids"].tolist()]
    assert [p for p, f in zip(pieces[0], flags[0]) if f] == ["good"]
    assert [p for p, f in zip(pieces[1], flags[1]) if f] == ["awful"]


def test_pretraining_keeps_the_last_epoch_and_reads_no_test(tmp_path):
    results = train.train(config("experiment=sst_phrase_pretrain", *SST_TINY, "trainer.max_epochs=2",
                                 "trainer.limit_train_batches=2"), tmp_path)
    assert results["select"] == "last" and results["best_epoch"] == 2 and "test" not in results
    assert not (tmp_path / "test_predictions.jsonl").exists()
    pretrained = TreeSentimentModel.from_pretrained(tmp_path / "best_model")
    assert isinstance(pretrained.head, torch.nn.Sequential) and pretrained.hparams["mlm"]


# ---- SST-3: a separately trained 3-class model ---------------------------------------------------------------
def test_sst3_label_view():
    tree = BinaryTree.from_ptb("(4 (0 bad) (3 (2 the) (1 film)))")
    three = relabel(tree, "sst3")
    assert three.labels == (2, 2) and three.word_labels == (0, 1, 0) and three.tokens == tree.tokens
    unlabelled = BinaryTree.from_ptb("(X (X a) (X b))")
    assert relabel(unlabelled, "sst3").labels == (UNLABELED,)


def test_three_class_predictions_are_scored_against_collapsed_gold():
    tree = BinaryTree.from_ptb("(4 (0 bad) (3 (2 the) (1 film)))")  # nodes: root 4 -> 2, (3 ...) -> 2
    metrics = evaluate_predictions([tree], [[2, 1]], num_classes=3)
    assert metrics["phrase_acc"] == 0.5 and metrics["sst3_root_acc"] == 1.0
    assert "sst5_root_acc" not in metrics and "sst3_from_5class_root_acc" not in metrics
    with pytest.raises(ValueError, match="0-2"):
        evaluate_predictions([tree], [[4, 1]], num_classes=3)


def test_sst3_experiment_trains_a_three_class_model(tmp_path):
    results = train.train(config("experiment=sst3", *SST_TINY), tmp_path)
    assert results["metric"] == "sst3_root_acc" and set(results["reported"]) == {"sst3_root_acc"}
    model = TreeSentimentModel.from_pretrained(tmp_path / "best_model")
    assert model.hparams["num_classes"] == 3 and model.head.out_features == 3
    with pytest.raises(ValueError, match="model.num_classes=5 but sst .label_view=sst3. has 3 classes"):
        train.train(config("experiment=sst3", *SST_TINY, "model.num_classes=5"), tmp_path / "bad")


# ---- transfer: GLUE SST-2 and EmoInt --------------------------------------------------------------------------
def write_labelled(root: Path, dataset: str, column: str, splits: tuple[str, ...], rows) -> None:
    (root / dataset).mkdir(parents=True)
    for split in splits:
        (root / dataset / f"{split}.tsv").write_text(
            f"{column}\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")


@pytest.fixture
def pretrained(tiny_model) -> Path:
    return tiny_model(mlm=True)


def test_glue_sst2_one_epoch_from_the_pretrained_checkpoint(tmp_path, pretrained, fake_parser):
    words = ["awful", "bad", "good", "great"]
    rows = [(f"the film is {'very ' * (i % 3)}{words[i % 4]}", int(i % 4 >= 2)) for i in range(40)]
    write_labelled(tmp_path / "data", "sst2-glue", "sentence", ("train", "test"), rows)
    results = train.train(config("experiment=sst2_glue", *TINY, f"data.root={tmp_path / 'data'}",
                                 "data.batch_size=8", f"init_from={pretrained}"), tmp_path / "run")
    assert [d["epoch"] for d in results["dev"]] == [1]  # one epoch, as the paper
    assert results["metric"] == "accuracy" and results["test"]["n"] == 40
    model = TreeSentimentModel.from_pretrained(tmp_path / "run" / "best_model")
    assert isinstance(model, SentiBERT) and model.head.out_features == 2 and not model.hparams["mlm"]
    assert model.root_only


def test_emoint_cls_baseline_is_the_plain_encoder_with_a_cls_head(tmp_path, fake_parser):
    rows = [(f"so {'very ' * (i % 3)}{['sad', 'calm', 'glad', 'happy'][i % 4]} today", i % 4) for i in range(40)]
    write_labelled(tmp_path / "data", "emoint-sad", "text", ("train", "test"), rows)
    cfg = config("experiment=emoint_sad", "model=cls", *TINY, f"data.root={tmp_path / 'data'}",
                 "trainer.max_epochs=1")
    assert (cfg.data.batch_size, cfg.trainer.max_epochs, cfg.metric) == (16, 1, "pearson")
    assert config("experiment=emoint_sad").trainer.max_epochs == 5  # the authors' epochs for sad
    results = train.train(cfg, tmp_path / "run")
    assert set(results["test"]) == {"accuracy", "macro_f1", "pearson", "n"}
    model = TreeSentimentModel.from_pretrained(tmp_path / "run" / "best_model")
    assert isinstance(model, CLSPool) and model.root_only and model.head.out_features == 4
    assert not hasattr(model, "composition")  # no tree composition: the root is the [CLS] state
    dataset = TreeDataset(fake_parser.parse(["so very sad today"]), model.tokenizer)
    batch = dataset.collate([dataset[0]])
    model.eval()
    hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    assert torch.equal(model.node_states(hidden, batch)[0][:, 0], hidden[:, 0])


# ---- honest selection -----------------------------------------------------------------------------------------
def test_the_sweep_objective_is_the_selected_epochs_dev_metric(tmp_path):
    value = train_command.run(config("experiment=sst5", *SST_TINY, "trainer.max_epochs=2"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    dev = [d["sst5_root_acc"] for d in metrics["dev"]]
    assert value == metrics["best_dev"] == max(dev)
    assert value == dev[metrics["best_epoch"] - 1]


def test_evaluation_and_prediction_use_the_trained_max_length(tiny_model):
    tree = max(read_trees(FIXTURE_ROOT / "sst" / "test.txt"), key=lambda t: len(t.tokens))  # 4 words fit
    loaded = TreeSentimentModel.from_pretrained(tiny_model(max_length=6))
    assert loaded.max_length == 6  # not the tokenizer's 128
    prediction = loaded.predict_trees([tree])[0]
    assert len(prediction.wordpieces) == 6 and None in prediction.labels  # truncated nodes have no prediction
    assert config("encoder=tiny").model.max_length == config("encoder=tiny").encoder.max_length == 128


def test_predict_refuses_what_the_trained_max_length_would_cut(tmp_path):
    from sentibert.inference.predict import PredictError, predict

    model = SentiBERT(encoder="tiny", max_length=6)
    assert len(predict(["a good film"], model, parser=RightBranchingParser())) == 1  # 3 words + 2 specials
    with pytest.raises(PredictError, match="text:1: 8 wordpieces, more than the encoder's limit of 6"):
        predict(["not a good film at all"], model, parser=RightBranchingParser())
