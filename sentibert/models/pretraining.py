"""The paper's pre-training stage: masked LM that prefers sentiment words, beside the phrase-node loss.

The authors (`pregenerate_training_data_sstphrase.py`) mask each wordpiece of a sentiment word with probability 0.2
and every other wordpiece with 0.15, keeping at most max(1, round(0.15 * length)) and at most 20 per sentence
(length counts [CLS] and [SEP]); a masked wordpiece becomes [MASK] 80% of the time, a random token 10%, and stays
10%. Their candidates are visited in random order until the cap is reached, which keeps a uniformly random subset
of the drawn ones when more are drawn than the cap allows: `mask_tokens` does that with random priorities.

Sentiment words. The authors take every word with a non-zero score in SentiWordNet 3.0, which cannot be downloaded
here. `sentiment_lexicon` uses SST's own word labels instead: a word is a sentiment word if any of its leaves in SST
*train* is labelled non-neutral. When nltk's `sentiwordnet` corpus is installed, its words are added too.
"""
from __future__ import annotations

import logging
from typing import Iterable

import torch

from sentibert.data.labels import NEUTRAL
from sentibert.data.tree import UNLABELED, BinaryTree, normalize_token

log = logging.getLogger(__name__)
Tensor = torch.Tensor
MLM_IGNORE = -100  # mlm_labels value for tokens that were not picked (the transformers convention)


# ---- sentiment words ----------------------------------------------------------------------------------------
def _key(word: str) -> str:
    return normalize_token(word).lower()


def sst_sentiment_words(trees: Iterable[BinaryTree]) -> set[str]:
    """Lower-cased words with a non-neutral leaf label anywhere in `trees` (pass SST train only)."""
    return {_key(token) for tree in trees for token, label in zip(tree.tokens, tree.word_labels)
            if label not in (NEUTRAL, UNLABELED)}


def sentiwordnet_words() -> set[str]:
    """Words with a non-zero positive or negative score in SentiWordNet (the authors' list); empty when nltk's
    `sentiwordnet` corpus is not installed (`nltk.download("sentiwordnet")` needs a network)."""
    import nltk

    try:
        nltk.data.find("corpora/sentiwordnet")
    except LookupError:
        return set()
    from nltk.corpus import sentiwordnet

    return {_key(lemma.replace("_", " ")) for s in sentiwordnet.all_senti_synsets()
            if s.pos_score() or s.neg_score() for lemma in s.synset.lemma_names()}


def sentiment_lexicon(train_trees: Iterable[BinaryTree]) -> frozenset[str]:
    sst, swn = sst_sentiment_words(train_trees), sentiwordnet_words()
    log.info("sentiment words: %d from SST train labels, %d from SentiWordNet%s", len(sst), len(swn),
             "" if swn else " (nltk corpus not installed)")
    return frozenset(sst | swn)


def sentiment_wordpieces(batch: dict[str, Tensor], trees: list[BinaryTree], lexicon: frozenset[str]) -> Tensor:
    """-> [B, T] bool: the wordpieces of sentiment words. `trees[batch["index"][b]]` is row b's tree."""
    B, T = batch["input_ids"].shape
    spans = batch["word_spans"]  # [B, W, 2]
    is_word = torch.zeros(spans.shape[:2], dtype=torch.bool)  # [B, W]
    for b, i in enumerate(batch["index"].tolist()):
        flags = [_key(token) in lexicon for token in trees[i].tokens]
        is_word[b, :len(flags)] = torch.tensor(flags, dtype=torch.bool)
    positions = torch.arange(T)  # [T]
    inside = (positions >= spans[..., :1].cpu()) & (positions < spans[..., 1:].cpu())  # [B, W, T]
    return (inside & is_word[..., None]).any(1)  # [B, T]


# ---- masking --------------------------------------------------------------------------------------------------
def mask_tokens(input_ids: Tensor, attention_mask: Tensor, tokenizer, probability: float = 0.15,
                generator: torch.Generator | None = None, sentiment: Tensor | None = None,
                sentiment_probability: float = 0.2, max_predictions: int = 20) -> tuple[Tensor, Tensor]:
    """Pick wordpieces to predict (never special tokens or padding): those in `sentiment` [B, T] with
    `sentiment_probability`, the rest with `probability`, then keep a random subset of at most
    min(max_predictions, max(1, round(probability * length))) per sentence. Of the picked, 80% become the mask
    token, 10% a random token, 10% stay. -> (masked input_ids, mlm_labels: the original id where picked, MLM_IGNORE
    elsewhere). Random draws are on the CPU (`generator`'s device), so they do not depend on the device."""
    device, shape = input_ids.device, input_ids.shape

    def uniform() -> Tensor:
        return torch.rand(shape, generator=generator).to(device)

    real = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids, device=device))
    p = torch.full(shape, probability, device=device)
    if sentiment is not None:
        p = torch.where(sentiment.to(device), sentiment_probability, p)
    drawn = (uniform() < p) & real  # [B, T]
    lengths = attention_mask.sum(1)  # [B], special tokens included, as the authors count
    caps = torch.round(lengths * probability).clamp(min=1, max=max_predictions)  # [B]; round half to even, as Python
    priority = torch.where(drawn, uniform(), 2.0)  # drawn ones first, in random order
    rank = priority.argsort(1).argsort(1)  # [B, T]: each position's place in that order
    picked = drawn & (rank < caps[:, None])
    to_mask = picked & (uniform() < 0.8)
    to_random = picked & ~to_mask & (uniform() < 0.5)  # half of the remaining 20%
    random_ids = torch.randint(len(tokenizer), shape, generator=generator).to(device)
    masked = torch.where(to_mask, tokenizer.mask_token_id, torch.where(to_random, random_ids, input_ids))
    return masked, torch.where(picked, input_ids, MLM_IGNORE)
