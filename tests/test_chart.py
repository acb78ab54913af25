"""The bundled parser's model: CKY against brute force, fenceposts, save/load, and learning a few trees."""
import itertools

import numpy as np
import pytest
import torch
from conftest import FIXTURES

from sentibert.config import SAMPLE_DATA_DIR
from sentibert.data.tree import read_trees
from sentibert.models.encoder import load_tokenizer
from sentibert.parsing.chart import ChartConfig, ChartParser, cky, collate, encode_words, gold_spans, span_loss


def all_span_sets(i: int, j: int):
    """Every binary tree over words i..j-1, as its set of phrase spans."""
    if j - i == 1:
        yield frozenset()
        return
    for k in range(i + 1, j):
        for left, right in itertools.product(list(all_span_sets(i, k)), list(all_span_sets(k, j))):
            yield left | right | {(i, j)}


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_cky_finds_the_highest_scoring_tree(n):
    rng = np.random.default_rng(n)
    words = [f"w{i}" for i in range(n)]
    for _ in range(5):
        scores = rng.normal(size=(n + 1, n + 1))
        best = max(all_span_sets(0, n), key=lambda spans: sum(scores[s] for s in spans))
        tree = cky(scores, words)
        assert tree.tokens == tuple(words)
        assert set(tree.spans) == (set(best) if n > 1 else {(0, 1)})
        assert len(tree) == max(n - 1, 1)


def test_fenceposts_point_at_each_words_first_wordpiece():
    tok = load_tokenizer("tiny")
    words = ["good", ",", "good", "unbelievablyxyz", "-LRB-", "."]
    ids, fence = encode_words(words, tok)
    enc = tok([w if w != "-LRB-" else "(" for w in words], is_split_into_words=True)
    assert ids == enc["input_ids"]
    assert fence[0] == 0 and fence[-1] == len(ids) - 1  # [CLS] ... [SEP]
    word_ids = enc.word_ids()
    assert [word_ids[p] for p in fence[1:-1]] == list(range(len(words)))
    assert all(word_ids[p - 1] != word_ids[p] for p in fence[1:-1])  # the first piece, not a later one


def test_collate_marks_only_multiword_spans_inside_each_sentence():
    tok = load_tokenizer("tiny")
    batch = collate([encode_words(["a", "b", "c"], tok), encode_words(["a", "b"], tok)], tok.pad_token_id)
    valid = batch["valid"]
    assert valid.shape == (2, 4, 4)
    assert {tuple(x) for x in valid[0].nonzero().tolist()} == {(0, 2), (0, 3), (1, 3)}
    assert {tuple(x) for x in valid[1].nonzero().tolist()} == {(0, 2)}


@pytest.fixture(scope="module")
def trees():
    return read_trees(FIXTURES / "model_trees.txt")[:6]


def tiny_parser(seed=0) -> ChartParser:
    torch.manual_seed(seed)
    model = ChartParser(ChartConfig(encoder="tiny", lora_rank=4, span_dim=32, hidden=32))
    model.add_adapters()
    return model


def test_learns_to_reproduce_its_training_trees(trees):
    model = tiny_parser()
    assert [t.spans for t in model.parse([t.tokens for t in trees])] != [t.spans for t in trees]
    items = [model.encode(t.tokens) for t in trees]
    batch = collate(items, model.tokenizer.pad_token_id)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    model.train()
    for _ in range(150):
        loss = span_loss(model(**batch), batch["valid"], [gold_spans(t) for t in trees])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    parsed = model.parse([t.tokens for t in trees])
    assert [set(p.spans) for p in parsed] == [set(t.spans) for t in trees]


def test_save_keeps_only_trained_weights_and_load_parses_the_same(tmp_path, trees):
    model = tiny_parser()
    with torch.no_grad():  # LoRA's B starts at zero: move it, so merging on load has something to merge
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.save(tmp_path / "parser")
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "parser" / "model.safetensors"))
    assert set(saved) == set(model.trained_state())
    assert all("lora_" in name or not name.startswith("encoder.") for name in saved)  # no frozen encoder weights
    assert all(t.dtype == torch.float16 for t in saved.values())

    loaded = ChartParser.load(tmp_path / "parser")
    assert not any("lora" in name for name, _ in loaded.named_parameters())  # adapters merged in
    model.eval()
    words = [t.tokens for t in trees]
    batch = collate([model.encode(w) for w in words], model.tokenizer.pad_token_id)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch), model(**batch), atol=2e-2, rtol=2e-2)


def test_bad_input_is_named(tmp_path):
    model = tiny_parser()
    with pytest.raises(ValueError, match="empty sentence"):
        model.parse([["fine"], []])
    with pytest.raises(ValueError, match="over the parser's limit of 512"):
        model.parse([["word"] * 600])
    model.save(tmp_path / "p")
    (tmp_path / "p" / "config.json").write_text((tmp_path / "p" / "config.json").read_text().replace('"lora_rank": 4', '"lora_rank": 8'))
    with pytest.raises(ValueError, match="parser weights do not match its config .*size mismatch"):
        ChartParser.load(tmp_path / "p")


def test_training_resumes_bit_for_bit_after_an_interruption(tmp_path, monkeypatch):
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("train_chart", Path(__file__).parents[1] / "experiments" / "parser" / "train_chart.py")
    train_chart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_chart)
    args = ["--data", str(Path(SAMPLE_DATA_DIR) / "sst"), "--encoder", "tiny", "--lora_rank", "4", "--span_dim", "16",
            "--epochs", "2", "--batch_size", "8", "--holdout", "8", "--eval_every", "2", "--threads", "1"]
    train_chart.main([*args, "--out", str(tmp_path / "straight")])

    calls = {"n": 0}
    real_loss = train_chart.span_loss

    def interrupt_at_step_4(*a, **k):  # after the step-2 checkpoint, before the step-4 one
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_loss(*a, **k)

    monkeypatch.setattr(train_chart, "span_loss", interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_chart.main([*args, "--out", str(tmp_path / "resumed")])
    monkeypatch.setattr(train_chart, "span_loss", real_loss)
    train_chart.main([*args, "--out", str(tmp_path / "resumed"), "--resume"])

    straight, resumed = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("straight", "resumed"))
    assert [h["step"] for h in straight["history"]] == [2, 4, 6, 8, 10]  # 40 trees in batches of 8, 2 epochs
    assert resumed["history"] == straight["history"]
    assert resumed["dev_f1"] == straight["dev_f1"] and resumed["test_f1"] == straight["test_f1"]
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / run / "best" / "model.safetensors")) for run in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_forward_equals_the_mlp_on_explicit_span_vectors(trees):
    model = tiny_parser().eval()
    batch = collate([model.encode(t.tokens) for t in trees], model.tokenizer.pad_token_id)
    with torch.no_grad():
        h = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        x = torch.stack([h[i, batch["fence"][i]] for i in range(len(trees))])
        fwd, bwd = model.proj(x).chunk(2, dim=-1)
        f, b = fwd[:, :-1], bwd[:, 1:]
        n = f.shape[1]
        spans = torch.stack([torch.stack([torch.cat([f[:, j] - f[:, i], b[:, i] - b[:, j]], dim=-1) for j in range(n)], dim=1)
                             for i in range(n)], dim=1)  # B,i,j,2d: the textbook span vector, span by span
        expected = model.mlp(spans).squeeze(-1).where(batch["valid"], 0)  # spans that are not scored stay 0
        torch.testing.assert_close(model(**batch), expected, atol=1e-5, rtol=1e-5)


def test_a_word_the_tokenizer_drops_keeps_its_leaf():
    tok = load_tokenizer("tiny")
    words = ["good", "\u200b", "film", "\x07"]
    ids, fence = encode_words(words, tok)
    assert len(fence) == len(words) + 2
    assert [ids[p] for p in fence[2:3] + fence[4:5]] == [tok.unk_token_id] * 2
    tree = tiny_parser().parse([words])[0]
    assert tree.tokens == tuple(words) and len(tree) == 3


def test_parse_batches_by_span_count_and_keeps_the_input_order(trees, monkeypatch):
    model = tiny_parser()
    sizes = []
    forward = ChartParser.forward
    monkeypatch.setattr(ChartParser, "forward", lambda self, **batch: sizes.append(batch["fence"].shape) or forward(self, **batch))
    sentences = [t.tokens for t in trees] + [("a",) * 40, ("b", "c")]
    parsed = model.parse(sentences, batch_size=3, max_spans=2000)
    assert [p.tokens for p in parsed] == [tuple(s) for s in sentences]
    assert all(b <= 3 and b * (f - 1) ** 2 <= 2000 or b == 1 for b, f in sizes)
    assert sum(b for b, _ in sizes) == len(sentences)
    assert (1, 42) in sizes  # the 40-word sentence alone: 41^2 spans, over the budget with any company
