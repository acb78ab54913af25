"""The bundled parser: a span-scoring chart parser that outputs SST-style binary trees directly.

    words -> MiniLM (+ LoRA adapters) -> fenceposts -> a score per span -> CKY -> the best binary tree

Span (i, j) covers words i..j-1. Its vector is the difference of fencepost vectors, forward halves from
the left and backward halves from the right (Stern et al. 2017; Kitaev & Klein 2018); an MLP turns it
into the logit that the span is a phrase of the tree. CKY then picks the binary tree whose phrases have
the highest total logit. Trained on SST train trees by `experiments/parser/train_chart.py`; used by
`sentibert.parsing.parse` when Stanza's official English models are not installed.

A saved model is a directory: `config.json` plus `model.safetensors` holding only what training changed
(the LoRA adapters and the span scorer, float16), so the bundle stays small; the encoder itself comes
from the locally installed MiniLM package.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from nltk import Tree
from safetensors.torch import load_file, save_file
from torch import nn

from sentibert.data.spans import wordpiece_spans
from sentibert.data.tree import BinaryTree, normalize_token
from sentibert.models.encoder import load_encoder, load_tokenizer

PHRASE_LABEL = "X"


@dataclass
class ChartConfig:
    encoder: str = "minilm"  # a name `sentibert.models.encoder.resolve_encoder` knows, never a machine's path
    lora_rank: int = 16
    lora_targets: list[str] = field(default_factory=lambda: ["query", "key", "value", "dense"])
    span_dim: int = 256  # per fencepost: half forward, half backward
    hidden: int = 256
    max_length: int = 512  # wordpieces; longer input is an error, not a silent truncation


# ---- words -> tensors -----------------------------------------------------------------------------------
def encode_words(words: Sequence[str], tokenizer) -> tuple[list[int], list[int]]:
    """(wordpiece ids, fencepost positions): [CLS], each word's first wordpiece, [SEP]. A word the tokenizer
    drops entirely (a lone zero-width space, a control character) is read as the unknown token, so every
    word keeps its leaf."""
    normalized = [normalize_token(w) for w in words]
    enc = tokenizer(normalized, is_split_into_words=True)
    spans = wordpiece_spans(enc.word_ids(), len(words))
    if any(end == 0 for _, end in spans):
        normalized = [w if end > 0 else tokenizer.unk_token for w, (_, end) in zip(normalized, spans)]
        enc = tokenizer(normalized, is_split_into_words=True)
        spans = wordpiece_spans(enc.word_ids(), len(words))
    return enc["input_ids"], [0, *(start for start, _ in spans), len(enc["input_ids"]) - 1]


class SentenceError(ValueError):
    """Input the parser cannot take; `index` is the sentence's position in the list given to `parse`."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def gold_spans(tree: BinaryTree) -> np.ndarray:
    """(n+1, n+1) 0/1 matrix: 1 where words i..j-1 form a node of the tree."""
    gold = np.zeros((len(tree.tokens) + 1,) * 2, dtype=np.float32)
    for start, end in tree.spans:
        gold[start, end] = 1
    return gold


def span_loss(logits: torch.Tensor, valid: torch.Tensor, golds: Sequence[np.ndarray]) -> torch.Tensor:
    """Binary cross-entropy of every scored span against the gold trees' `gold_spans` (one per sentence)."""
    gold = torch.zeros_like(logits)
    for b, g in enumerate(golds):
        gold[b, :len(g), :len(g)] = torch.from_numpy(g)
    return nn.functional.binary_cross_entropy_with_logits(logits[valid], gold[valid])


def collate(items: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pads to the longest sentence in the batch. `valid` marks the spans that are scored: i < j - 1."""
    B, T, F = len(items), max(len(ids) for ids, _ in items), max(len(f) for _, f in items)
    batch = {"input_ids": torch.full((B, T), pad_id), "attention_mask": torch.zeros(B, T, dtype=torch.long),
             "fence": torch.zeros(B, F, dtype=torch.long), "valid": torch.zeros(B, F - 1, F - 1, dtype=torch.bool)}
    for b, (ids, fence) in enumerate(items):
        n = len(fence) - 2
        batch["input_ids"][b, :len(ids)] = torch.tensor(ids)
        batch["attention_mask"][b, :len(ids)] = 1
        batch["fence"][b, :len(fence)] = torch.tensor(fence)
        batch["valid"][b, :n + 1, :n + 1] = torch.ones(n + 1, n + 1, dtype=torch.bool).triu(2)
    return batch


# ---- the model ------------------------------------------------------------------------------------------
class ChartParser(nn.Module):
    def __init__(self, config: ChartConfig, encoder: nn.Module | None = None, tokenizer=None):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer or load_tokenizer(config.encoder)
        self.encoder = encoder or load_encoder(config.encoder)
        self.proj = nn.Linear(self.encoder.config.hidden_size, 2 * config.span_dim)
        self.mlp = nn.Sequential(nn.Linear(2 * config.span_dim, config.hidden), nn.LayerNorm(config.hidden),
                                 nn.ReLU(), nn.Linear(config.hidden, 1))

    def add_adapters(self) -> None:
        """Freeze the encoder behind LoRA adapters: only the adapters and the span scorer train."""
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=self.config.lora_rank, lora_alpha=self.config.lora_rank, lora_dropout=0.1,
                          target_modules=self.config.lora_targets)
        with warnings.catch_warnings():  # peft calls a transformers method deprecated in v5; nothing for users to do
            warnings.simplefilter("ignore", FutureWarning)
            self.encoder = get_peft_model(self.encoder, lora)

    def forward(self, input_ids, attention_mask, fence, valid, **_) -> torch.Tensor:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # B,T,H
        x = torch.gather(h, 1, fence.unsqueeze(-1).expand(-1, -1, h.size(-1)))  # B,n+2,H: [CLS] words [SEP]
        fwd, bwd = self.proj(x).chunk(2, dim=-1)  # B,n+2,d each
        f, b = fwd[:, :-1], bwd[:, 1:]  # fencepost k in 0..n: forward half of item k, backward half of item k+1
        # Span (i, j) is [f_j - f_i ; b_i - b_j], fed to the MLP. Its first layer is linear, so it is applied to
        # the n+1 fenceposts instead of the (n+1)^2 spans: the same function at a fraction of the cost.
        first = self.mlp[0]
        wf, wb = first.weight.split(self.config.span_dim, dim=1)
        pf, pb = f @ wf.T, b @ wb.T  # B,n+1,hidden
        # The rest of the MLP runs on the scored spans only (about half the padded square); the others stay 0.
        s, i, j = valid.nonzero(as_tuple=True)  # M spans
        hidden = pf[s, j] - pf[s, i] + pb[s, i] - pb[s, j] + first.bias  # M,hidden
        logits = self.mlp[1:](hidden).squeeze(-1)  # M
        return logits.new_zeros(valid.shape).index_put((s, i, j), logits)  # B,n+1,n+1: logit that i..j-1 is a phrase

    @torch.no_grad()
    def parse(self, sentences: Sequence[Sequence[str]], batch_size: int = 64,
              max_spans: int = 20_000) -> list[BinaryTree]:
        """Words per sentence -> one binary tree per sentence, every node labelled PHRASE_LABEL (no sentiment).
        A batch holds at most `batch_size` sentences and `max_spans` padded spans (memory grows with n^2; on a
        2-core CPU 20k parsed SST test 10-20% faster than 100k: the span states stay in cache)."""
        was_training = self.training
        self.eval()
        items = []
        for i, words in enumerate(sentences):
            try:
                items.append(self.encode(words))
            except ValueError as err:
                raise SentenceError(i, f"sentence {i + 1}: {err}") from None
        order = sorted(range(len(items)), key=lambda i: len(items[i][1]))  # similar lengths pad little
        trees: list[BinaryTree | None] = [None] * len(items)
        chunk: list[int] = []
        for n, i in enumerate(order):
            chunk.append(i)
            following = order[n + 1] if n + 1 < len(order) else None
            full = following is None or len(chunk) == batch_size
            if full or (len(chunk) + 1) * len(items[following][1]) ** 2 > max_spans:
                scores = self(**collate([items[j] for j in chunk], self.tokenizer.pad_token_id)).float().numpy()
                for j, s in zip(chunk, scores):
                    trees[j] = cky(s, list(sentences[j]))
                chunk = []
        self.train(was_training)
        return trees

    def encode(self, words: Sequence[str]) -> tuple[list[int], list[int]]:
        if not words:
            raise ValueError("cannot parse an empty sentence")
        ids, fence = encode_words(words, self.tokenizer)
        if len(ids) > self.config.max_length:
            raise ValueError(f"{len(ids)} wordpieces, over the parser's limit of {self.config.max_length}: "
                             f"{' '.join(words[:8])} ...")
        return ids, fence

    # ---- save / load: config + the trained parameters only ----------------------------------------------
    def trained_state(self) -> dict[str, torch.Tensor]:
        return {name: p.detach() for name, p in self.named_parameters() if p.requires_grad}

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")
        state = {name: t.to(torch.float16).contiguous() for name, t in self.trained_state().items()}
        save_file(state, str(directory / "model.safetensors"))

    @classmethod
    def load(cls, directory: str | Path) -> "ChartParser":
        """The saved parser, adapters merged into the encoder (plain MiniLM speed)."""
        directory = Path(directory)
        config = ChartConfig(**json.loads((directory / "config.json").read_text(encoding="utf-8")))
        model = cls(config)
        model.add_adapters()
        state = {name: t.float() for name, t in load_file(str(directory / "model.safetensors")).items()}
        missing = set(model.trained_state()) - set(state)
        unexpected = set(state) - set(dict(model.named_parameters()))
        if missing or unexpected:
            raise ValueError(f"{directory}: parser weights do not match its config "
                             f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
        try:
            model.load_state_dict(state, strict=False)
        except RuntimeError as err:  # same names, other shapes (e.g. another lora_rank)
            reason = " ".join(str(err).split())
            raise ValueError(f"{directory}: parser weights do not match its config ({reason[:300]})") from None
        model.encoder = model.encoder.merge_and_unload()
        return model.eval()


# ---- decoding -------------------------------------------------------------------------------------------
def cky(scores: np.ndarray, words: list[str]) -> BinaryTree:
    """The binary tree over `words` whose phrases have the highest total score; scores[i, j] scores words i..j-1.
    Vectorised over start positions: one numpy step per span length."""
    n = len(words)
    best = np.zeros((n + 1, n + 1))
    split = np.zeros((n + 1, n + 1), dtype=np.int64)
    for length in range(2, n + 1):
        starts = np.arange(n - length + 1)  # spans (i, i + length)
        ks = starts[:, None] + np.arange(1, length)[None, :]  # every split point of each span
        totals = best[starts[:, None], ks] + best[ks, starts[:, None] + length]
        arg = totals.argmax(axis=1)
        best[starts, starts + length] = scores[starts, starts + length] + totals[starts, arg]
        split[starts, starts + length] = ks[starts, arg]

    def build(i: int, j: int) -> Tree:
        if j - i == 1:
            return Tree(PHRASE_LABEL, [words[i]])
        k = split[i, j]
        return Tree(PHRASE_LABEL, [build(i, k), build(k, j)])

    return BinaryTree.from_nltk(build(0, n))
