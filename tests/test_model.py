"""The models on the tiny encoder: masks, batching, gradients, ablations, save/load, prediction, learning."""
import json
from pathlib import Path

import pytest
import torch
import transformers

from sentibert.data.spans import TreeDataset
from sentibert.data.tree import BinaryTree, read_trees
from sentibert.models import model as model_module
from sentibert.models.model import CLSPool, MeanPool, SentiBERT, TreeLSTM, TreeSentimentModel
from sentibert.models.pretraining import MLM_IGNORE, mask_tokens

FIXTURE = Path(__file__).parent / "fixtures" / "model_trees.txt"
transformers.logging.set_verbosity_error()  # "newly initialised weights" reports are expected here


@pytest.fixture(scope="module", autouse=True)
def tiny_cache(tmp_path_factory):
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIBERT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def trees():
    return read_trees(FIXTURE)


def make(cls=SentiBERT, seed=0, encoder="tiny", **kwargs):
    torch.manual_seed(seed)
    return cls(encoder, **kwargs)


def batch_of(model, trees):
    dataset = TreeDataset(trees, model.tokenizer)
    return dataset.collate([dataset[i] for i in range(len(dataset))])


def phrase_accuracy(model, batch):
    model.eval()
    with torch.no_grad():
        predicted = model(batch)["logits"].argmax(-1)
    labelled = batch["labels"] >= 0
    return (predicted[labelled] == batch["labels"][labelled]).float().mean().item()


def train(model, batch, steps, lr=1e-3):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# ---- shapes and masks --------------------------------------------------------------------------------------------
def allowed_keys(batch, b, n):
    """What node n of tree b may attend to, written out node by node: (its span's tokens, its layer-2 keys)."""
    T = batch["input_ids"].shape[1]
    start, end = batch["node_spans"][b, n].tolist()
    keys = {T + n}
    for child in batch["node_children"][b, n].tolist():
        if child >= 0:
            keys.add(T + child)
        else:
            word_start, word_end = batch["word_spans"][b, -child - 1].tolist()
            keys.update(range(word_start, word_end))
    return set(range(start, end)), keys


def test_attention_only_on_span_and_children(trees):
    model = make().eval()
    batch = batch_of(model, trees)
    with torch.no_grad():
        out = model(batch, return_attentions=True)
    B, N = batch["node_mask"].shape
    T = batch["input_ids"].shape[1]
    tokens, children = out["attentions"]["tokens"], out["attentions"]["children"]
    assert out["logits"].shape == (B, N, 5)
    assert tokens.shape == (B, N, T) and children.shape == (B, N, T + N)
    for b in range(B):
        for n in range(N):
            if not batch["node_mask"][b, n]:
                assert tokens[b, n].abs().sum() == 0 and children[b, n].abs().sum() == 0  # padding node
                continue
            span, keys = allowed_keys(batch, b, n)
            for weights, allowed in ((tokens[b, n], span), (children[b, n], keys)):
                inside = torch.zeros_like(weights, dtype=torch.bool)
                inside[sorted(allowed)] = True
                assert (weights[~inside] == 0).all(), (b, n)
                assert (weights[inside] > 0).all(), (b, n)
                assert weights.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (tokens[batch["attention_mask"][:, None, :].expand_as(tokens) == 0] == 0).all()  # padding tokens


@pytest.mark.parametrize("cls,kwargs", [(SentiBERT, {}), (SentiBERT, {"recursive": True}), (TreeLSTM, {}),
                                        (CLSPool, {})])
def test_tree_unchanged_when_batched_with_longer_tree(trees, cls, kwargs):
    model = make(cls, **kwargs).eval()
    short = min(trees, key=len)
    longest = max(trees, key=len)
    with torch.no_grad():
        alone = model(batch_of(model, [short]))["logits"][0]
        together = model(batch_of(model, [longest, short]))["logits"][1, :len(short)]
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_gradients_reach_encoder_and_composition(trees):
    model = make()
    model(batch_of(model, trees[:4]))["loss"].backward()
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0
    for name, param in model.composition.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls, kwargs", [
    (SentiBERT, {}), (SentiBERT, {"attend_tokens": False}), (SentiBERT, {"attend_children": False}),
    (SentiBERT, {"recursive": True}), (SentiBERT, {"root_only": True}), (SentiBERT, {"lora_rank": 2}),
    (MeanPool, {}), (CLSPool, {}), (TreeLSTM, {}),
])
def test_unused_parameters_says_whether_a_step_leaves_weights_without_a_gradient(trees, cls, kwargs):
    """DDP looks for unused weights (an extra pass each step) only where the model says there are some."""
    one_word = [BinaryTree.from_ptb("(3 good)"), BinaryTree.from_ptb("(1 bad)")]  # no phrase node to compose
    for batch_trees in (trees[:4], one_word):
        model = make(cls, **kwargs)
        model(batch_of(model, batch_trees))["loss"].backward()
        unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert bool(unused) == model.unused_parameters, unused


# ---- ablations ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,maps", [
    ({"attend_tokens": False}, {"children"}),
    ({"attend_children": False}, {"tokens"}),
    ({"recursive": True}, {"tokens", "children"}),
    ({"root_only": True}, {"tokens", "children"}),
])
def test_ablation_runs_and_learns(trees, kwargs, maps):
    model = make(dropout=0.0, **kwargs)
    batch = batch_of(model, trees)
    assert set(model(batch, return_attentions=True)["attentions"]) == maps
    losses = train(model, batch, steps=5)
    assert losses[-1] < losses[0]


def test_recursive_differs_from_one_hop_only_above_height_one(trees):
    """Nodes over two words see the same keys either way; higher nodes see their children's final states."""
    one_hop = make().eval()
    recursive = make(recursive=True).eval()
    recursive.load_state_dict(one_hop.state_dict())
    batch = batch_of(one_hop, trees)
    with torch.no_grad():
        a, b = one_hop(batch)["logits"], recursive(batch)["logits"]
    lowest = (batch["node_height"] == 1) & batch["node_mask"]
    higher = (batch["node_height"] > 1) & batch["node_mask"]
    torch.testing.assert_close(a[lowest], b[lowest])
    assert ((a[higher] - b[higher]).abs().amax(-1) > 1e-6).all()


def test_recursive_needs_child_attention():
    with pytest.raises(ValueError, match="attend_children"):
        make(recursive=True, attend_children=False)


def test_root_only_ignores_phrase_labels(trees):
    model = make(root_only=True).eval()
    batch = batch_of(model, trees)
    relabelled = {**batch, "labels": batch["labels"].clone()}
    relabelled["labels"][:, 1:] = torch.where(relabelled["labels"][:, 1:] >= 0, 0, -1)
    with torch.no_grad():
        assert model(batch)["loss"] == model(relabelled)["loss"]
        relabelled["labels"][:, 0] = (batch["labels"][:, 0] + 1) % 5
        assert model(batch)["loss"] != model(relabelled)["loss"]


# ---- baselines ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MeanPool, CLSPool, TreeLSTM])
def test_baseline_trains(trees, cls):
    model = make(cls, dropout=0.0)
    losses = train(model, batch_of(model, trees), steps=10, lr=3e-3)
    assert losses[-1] < losses[0] - 0.05


def test_cls_pool_root_is_cls_and_phrases_are_span_means(trees):
    model = make(CLSPool)
    batch = batch_of(model, trees[:3])
    hidden = torch.randn(3, batch["input_ids"].shape[1], model.hidden_size)
    states, _ = model.node_states(hidden, batch)
    torch.testing.assert_close(states[:, 0], hidden[:, 0])
    start, end = batch["node_spans"][1, 2].tolist()
    torch.testing.assert_close(states[1, 2], hidden[1, start:end].mean(0))


def test_tree_lstm_matches_node_by_node_recursion(trees):
    model = make(TreeLSTM).eval()
    cell = model.composition
    tree = max(trees, key=len)
    batch = batch_of(model, [tree])
    hidden = torch.randn(1, batch["input_ids"].shape[1], model.hidden_size)
    with torch.no_grad():
        batched, _ = model.node_states(hidden, batch)

        def state(child):  # plain recursion over one tree, straight from Tai et al.
            if child < 0:
                start, end = batch["word_spans"][0, -child - 1].tolist()
                i, o, u = cell.leaf(hidden[0, start:end].mean(0)).chunk(3)
                c = torch.sigmoid(i) * torch.tanh(u)
                return torch.sigmoid(o) * torch.tanh(c), c
            (h_l, c_l), (h_r, c_r) = (state(k) for k in batch["node_children"][0, child].tolist())
            i, f_l, f_r, o, u = cell.node(torch.cat([h_l, h_r])).chunk(5)
            c = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f_l) * c_l + torch.sigmoid(f_r) * c_r
            return torch.sigmoid(o) * torch.tanh(c), c

        for node in range(len(tree)):
            torch.testing.assert_close(batched[0, node], state(node)[0])


# ---- learning ----------------------------------------------------------------------------------------------------
def test_sentibert_overfits_fixture_trees(trees):
    model = make()
    batch = batch_of(model, trees)
    assert phrase_accuracy(model, batch) < 0.6
    train(model, batch, steps=150, lr=1e-3)
    assert phrase_accuracy(model, batch) > 0.95


# ---- save / load -------------------------------------------------------------------------------------------------
def forbid_encoder_loading(monkeypatch, tmp_path):
    def refuse(name):
        raise AssertionError(f"from_pretrained loaded the encoder {name!r}")
    monkeypatch.setattr(model_module, "resolve_encoder", refuse)
    monkeypatch.setattr(model_module, "load_tokenizer", refuse)
    monkeypatch.setenv("SENTIBERT_CACHE", str(tmp_path / "empty-cache"))


@pytest.mark.parametrize("cls,kwargs", [(SentiBERT, {"recursive": True, "dropout": 0.2}), (TreeLSTM, {}),
                                        (SentiBERT, {"mlm": True}), (CLSPool, {"encoder": "tiny-roberta"})])
def test_save_load_round_trip(trees, tmp_path, monkeypatch, cls, kwargs):
    model = make(cls, **kwargs)
    train(model, batch_of(model, trees[:4]), steps=2)  # move every weight off its initial value
    model.save_pretrained(tmp_path / "ckpt")
    forbid_encoder_loading(monkeypatch, tmp_path)
    loaded = TreeSentimentModel.from_pretrained(tmp_path / "ckpt")
    assert type(loaded) is cls and loaded.hparams == model.hparams == {**loaded.hparams, **kwargs}
    batch = batch_of(model, trees)
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(batch)["logits"], loaded(batch)["logits"])
    assert torch.equal(batch_of(loaded, trees)["input_ids"], batch["input_ids"])  # same tokenizer, prefix space too
    if kwargs.get("mlm"):  # the MLM decoder is still tied to the input embeddings
        assert loaded.backbone.get_output_embeddings().weight is loaded.encoder.get_input_embeddings().weight


def test_pretrained_checkpoint_fine_tunes_without_mlm_head(trees, tmp_path):
    model = make(mlm=True).eval()
    model.save_pretrained(tmp_path)
    loaded = SentiBERT.from_pretrained(tmp_path, mlm=False, root_only=True).eval()
    assert not any("cls.predictions" in name for name, _ in loaded.named_parameters())
    assert loaded.hparams["mlm"] is False and loaded.root_only
    # The encoder and composition carry over; the pre-training head (dense, GELU, LayerNorm, linear) is replaced
    # by a new linear one.
    assert isinstance(model.head, torch.nn.Sequential) and isinstance(loaded.head, torch.nn.Linear)
    assert [type(m) for m in model.head] == [torch.nn.Linear, torch.nn.GELU, torch.nn.LayerNorm, torch.nn.Linear]
    batch = batch_of(model, trees)
    with torch.no_grad():
        assert torch.equal(model.composition(model.encode(batch)[0], batch)[0],
                           loaded.composition(loaded.encode(batch)[0], batch)[0])
    with pytest.raises(ValueError, match="MLM head"):
        loaded(dict(batch, mlm_labels=batch["input_ids"]))
    loaded.save_pretrained(tmp_path / "fine-tuned")
    assert json.loads((tmp_path / "fine-tuned" / "config.json").read_text())["kwargs"]["mlm"] is False


def test_bad_checkpoint_dir_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        SentiBERT.from_pretrained(tmp_path)
    make(MeanPool).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'MeanPool' model, not a SentiBERT"):
        SentiBERT.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        TreeSentimentModel.from_pretrained(tmp_path)


# ---- prediction --------------------------------------------------------------------------------------------------
def test_predict_trees_matches_forward_and_maps_attention_to_tree_nodes(trees):
    model = make().train()
    predictions = model.predict_trees(trees, batch_size=7, attentions=True)
    assert model.training  # mode restored
    model.eval()
    batch = batch_of(model, trees)
    with torch.no_grad():
        out = model(batch, return_attentions=True)
    probs = out["logits"].softmax(-1)
    for b, (tree, prediction) in enumerate(zip(trees, predictions)):
        assert prediction.tree is tree and len(prediction.probs) == len(tree) and not any(prediction.dropped)
        torch.testing.assert_close(torch.tensor(prediction.probs), probs[b, :len(tree)], atol=1e-5, rtol=1e-4)
        assert prediction.label == int(probs[b, 0].argmax())
        length = len(prediction.wordpieces)
        assert prediction.wordpieces[0] == "[CLS]" and prediction.token_attention.shape == (len(tree), length)
        torch.testing.assert_close(prediction.child_attention.sum(-1), torch.ones(len(tree)))
        for node in range(len(tree)):  # a node's own key (the nodes come after the wordpieces)
            T = batch["input_ids"].shape[1]
            assert prediction.child_attention[node, length + node] == pytest.approx(
                out["attentions"]["children"][b, node, T + node].item(), abs=1e-6)


def test_predict_trees_flags_nodes_lost_to_truncation():
    model = make(MeanPool)
    words = 150  # > the tiny encoder's 126 wordpieces
    ptb = "(3 good)"
    for _ in range(words - 1):
        ptb = f"(3 (2 the) {ptb})"
    tree = BinaryTree.from_ptb(ptb)
    (prediction,) = model.predict_trees([tree])
    kept = model.tokenizer.model_max_length - 2  # words with a wordpiece
    assert prediction.dropped == [start >= kept for start, _ in tree.spans]
    assert prediction.labels[0] is not None and prediction.probs[-1] is None and prediction.token_attention is None


# ---- masked-LM pre-training --------------------------------------------------------------------------------------
def test_mask_tokens_spares_special_tokens_and_padding(trees):
    model = make(mlm=True)
    batch = batch_of(model, trees)
    tokenizer = model.tokenizer
    masked, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], tokenizer, probability=0.5,
                                 generator=torch.Generator().manual_seed(0))
    picked = labels != MLM_IGNORE
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    assert not (picked & special).any() and not (picked & (batch["attention_mask"] == 0)).any()
    assert torch.equal(labels[picked], batch["input_ids"][picked])
    assert torch.equal(masked[~picked], batch["input_ids"][~picked])
    share_masked = (masked[picked] == tokenizer.mask_token_id).float().mean().item()
    assert 0.3 < picked.float().sum().item() / (~special & (batch["attention_mask"] == 1)).sum().item() < 0.7
    assert 0.7 < share_masked < 0.9

    out = model(dict(batch, input_ids=masked, mlm_labels=labels))
    assert out["mlm_loss"] > 0 and out["loss"] == out["phrase_loss"] + out["mlm_loss"]
    out["loss"].backward()
    assert model.backbone.get_output_embeddings().weight.grad.abs().sum() > 0


# ---- LoRA -----------------------------------------------------------------------------------------------------------
def test_lora_trains_adapters_composition_and_head_only(trees):
    model = make(lora_rank=4)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in name for name in trainable) and any(n.startswith("composition.") for n in trainable)
    assert {n for n in trainable if n.startswith("backbone.")} == {n for n in trainable if "lora_" in n}
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    train(model, batch_of(model, trees), steps=3)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters() if "lora_B" in n)
    with pytest.raises(ValueError, match="masked-LM"):
        make(lora_rank=4, mlm=True)


# LoRA on every linear layer and the word embeddings (a regex of module names: peft's full match)
WITH_EMBEDDINGS = ".*[.](query|key|value|dense|word_embeddings)"


@pytest.mark.parametrize("targets", [None, WITH_EMBEDDINGS])
def test_trainable_only_checkpoint_is_small_and_loads_its_base_from_the_encoder(trees, tmp_path, targets):
    model = make(lora_rank=4, lora_targets=targets)
    if targets:
        assert model.backbone.get_input_embeddings().lora_embedding_A["default"].requires_grad
    train(model, batch_of(model, trees), steps=3)
    model.eval()
    model.save_pretrained(tmp_path / "full")
    model.save_pretrained(tmp_path / "bundle", trainable_only=True, dtype=torch.float16)
    # float16 and the trained weights only: a float16 copy of everything would be half the float32 file
    sizes = {name: (tmp_path / name / "model.safetensors").stat().st_size for name in ("bundle", "full")}
    assert sizes["bundle"] < sizes["full"] / 3
    batch = batch_of(model, trees)
    with torch.no_grad():
        expected = model(batch)["logits"]
        for directory, tolerance in (("full", 0.0), ("bundle", 2e-3)):  # float16 rounding in the bundle
            loaded = TreeSentimentModel.from_pretrained(tmp_path / directory).eval()
            assert torch.allclose(loaded(batch)["logits"], expected, atol=tolerance, rtol=0), directory
    # A bundle whose weights do not match the model's trainable ones is named, not half-loaded.
    from safetensors.torch import load_file, save_file

    state = load_file(tmp_path / "bundle" / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("head.")}, tmp_path / "bundle" / "model.safetensors")
    with pytest.raises(ValueError, match="trainable ones"):
        TreeSentimentModel.from_pretrained(tmp_path / "bundle")


@pytest.mark.parametrize("targets", [None, WITH_EMBEDDINGS])
def test_merged_lora_predicts_what_the_adapters_do_without_them(trees, targets):
    model = make(lora_rank=4, lora_targets=targets)
    train(model, batch_of(model, trees), steps=3)  # lora_B starts at 0: train so that merging changes weights
    model.eval()
    batch = batch_of(model, trees)
    with torch.no_grad():
        expected = model(batch)["logits"]
        model.merge_lora()
        assert not any("lora_" in name for name, _ in model.named_parameters())
        torch.testing.assert_close(model(batch)["logits"], expected, atol=1e-5, rtol=1e-5)


def test_predict_trees_groups_by_length_and_keeps_the_input_order(trees):
    model = make().eval()
    mixed = sorted(trees, key=lambda t: -len(t.tokens))[:3] + sorted(trees, key=lambda t: len(t.tokens))[:3]
    sizes = []
    forward = model.forward
    model.forward = lambda batch, **kw: sizes.append(batch["input_ids"].shape) or forward(batch, **kw)
    together = model.predict_trees(mixed, batch_size=3)
    alone = [model.predict_trees([tree], batch_size=1)[0] for tree in mixed]
    assert [p.tree for p in together] == mixed
    for a, b in zip(together, alone):
        torch.testing.assert_close(torch.tensor(a.probs), torch.tensor(b.probs), atol=1e-5, rtol=1e-5)
    assert sizes[0][1] < sizes[1][1]  # the three short sentences went together, first: little padding
