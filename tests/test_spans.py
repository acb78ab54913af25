import pytest

from sentibert.data.spans import IGNORE, BucketBatchSampler, TreeDataset, encode_tree
from sentibert.data.tree import BinaryTree
from sentibert.models.encoder import load_tokenizer

REPEATED = BinaryTree.from_ptb("(3 (3 (3 good) (2 ,)) (3 (3 good) (3 (2 ,) (3 good))))")


@pytest.fixture(scope="module", params=["tiny", "tiny-roberta"])
def tokenizer(request):
    return load_tokenizer(request.param)


def pieces(tokenizer, enc, span):
    return tokenizer.convert_ids_to_tokens(enc.input_ids[span[0]:span[1]])


def test_repeated_phrase_maps_to_its_own_position(tokenizer):
    enc = encode_tree(REPEATED, tokenizer)
    first, second, third = enc.word_spans[0], enc.word_spans[2], enc.word_spans[4]
    assert first[0] >= 1  # shifted past [CLS] / <s>
    assert len({first, second, third}) == 3 and first < second < third
    # node 3 is "good" (word 2) + ", good": its span starts at the second "good", not the first
    assert enc.node_spans[2] == (second[0], third[1])
    assert enc.node_spans[3] == (enc.word_spans[3][0], third[1])


def test_subword_split_spans_cover_all_pieces(tokenizer):
    tree = BinaryTree.from_ptb("(1 (2 unbelievably) (1 (2 bad) (2 -RRB-)))")
    enc = encode_tree(tree, tokenizer)
    start, end = enc.word_spans[0]
    assert end - start > 1  # the tiny vocabularies split this word
    text = tokenizer.convert_tokens_to_string(pieces(tokenizer, enc, (start, end))).replace(" ", "")
    assert text == "unbelievably"
    assert tokenizer.convert_tokens_to_string(pieces(tokenizer, enc, enc.word_spans[2])).strip() == ")"
    assert enc.node_spans[0] == (start, enc.word_spans[2][1])  # root: all word pieces, no special tokens


def keep_three_words(tokenizer) -> int:
    """A max_length that keeps exactly the pieces of "good , good" plus the closing special token."""
    return encode_tree(REPEATED, tokenizer).word_spans[2][1] + 1


def test_truncation_clips_spans_and_drops_empty_nodes(tokenizer):
    full = encode_tree(REPEATED, tokenizer)
    enc = encode_tree(REPEATED, tokenizer, max_length=keep_three_words(tokenizer))
    assert enc.word_spans[:3] == full.word_spans[:3] and enc.word_spans[3:] == [(0, 0), (0, 0)]
    assert enc.dropped_nodes == 1 and enc.kept_nodes == [0, 1, 2]
    w = full.word_spans
    assert enc.node_spans == [(w[0][0], w[2][1]), (w[0][0], w[1][1]), w[2]]
    # node 2 ("good , good") lost its phrase child: it now points at a truncated word, which is empty
    dropped_child = enc.node_children[2][1]
    assert dropped_child < 0 and enc.word_spans[-dropped_child - 1] == (0, 0)
    assert enc.node_height == [2, 1, 1]


def test_dataset_counts_truncation(tokenizer, caplog):
    ds = TreeDataset([REPEATED, REPEATED], tokenizer, max_length=keep_three_words(tokenizer), name="fixture")
    assert ds.dropped_nodes == 2 and ds.truncated_trees == 2
    assert "dropped 2 nodes in 2 trees" in caplog.text


def test_collate_pads_to_longest_in_batch(tokenizer):
    short = BinaryTree.from_ptb("(3 (2 a) (3 good))")
    ds = TreeDataset([REPEATED, short], tokenizer)
    batch = ds.collate([ds[0], ds[1]])
    T = max(ds.lengths)
    assert batch["input_ids"].shape == (2, T) and batch["node_spans"].shape == (2, 4, 2)
    assert batch["attention_mask"].sum(1).tolist() == ds.lengths
    assert batch["node_mask"].tolist() == [[True] * 4, [True, False, False, False]]
    assert batch["labels"][1].tolist() == [3, IGNORE, IGNORE, IGNORE]
    assert (batch["input_ids"][1, ds.lengths[1]:] == tokenizer.pad_token_id).all()
    assert ds.collate([ds[1]], pad_to=128)["input_ids"].shape == (1, 128)


def test_unlabeled_nodes_are_ignored(tokenizer):
    enc = encode_tree(BinaryTree.from_ptb("(X (X not) (X bad))"), tokenizer)
    assert enc.labels == [IGNORE]


def test_bucket_sampler_groups_lengths_and_is_deterministic():
    lengths = [i % 50 + 3 for i in range(1000)]
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=1)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 5  # random batches would span ~45
    assert BucketBatchSampler(lengths, 32, seed=1).batches(0) == batches
    assert sampler.batches(1) != batches  # a new order every epoch


def test_bucket_sampler_resumes_mid_epoch():
    lengths = list(range(100))
    full = BucketBatchSampler(lengths, 8, seed=3).batches(2)
    first = BucketBatchSampler(lengths, 8, seed=3)
    first.set_epoch(2)
    it = iter(first)
    head = [next(it) for _ in range(5)]
    resumed = BucketBatchSampler(lengths, 8, seed=0)
    resumed.load_state_dict(first.state_dict())
    assert head + list(resumed) == full


def test_bucket_sampler_shards_for_ddp():
    lengths = list(range(100))
    shards = [BucketBatchSampler(lengths, 8, seed=0, num_replicas=2, rank=r).batches(0) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 6
    assert not set(map(tuple, shards[0])) & set(map(tuple, shards[1]))
