"""Phrase composition over binary constituency trees: SentiBERT's two attention layers and a Tree-LSTM.

Everything works on padded batches (see `sentibert.data.spans`) and is batched over all nodes of all sentences with
masks and gathers. Only the bottom-up variants (the recursive ablation, the Tree-LSTM) loop, over tree height.

SentiBERT (Yin et al., 2020), as in the authors' code. With T = Linear(H) applied to the encoder's last layer:
  layer 1, attention to tokens:   q_p = sum of T over p's span / (span length + 1)
                                  o_p = attention of q_p over the tokens of p's span
                                  h_p = FFN([q_p ; o_p])
  layer 2, attention to children: keys = all tokens (T) and all nodes (h); node p sees itself, its phrase
                                  children and the wordpieces of its word children
                                  g_p = FFN'([h_p ; attention of h_p over those keys])
  output:                         LN(GELU(W3 . LN(GELU(W2 . g_p))))
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


# ---- masks and pooling ------------------------------------------------------------------------------------
def span_mask(spans: Tensor, length: int) -> Tensor:
    """[..., 2] half-open spans -> [..., length] bool, True inside the span. Empty spans (0, 0) select nothing."""
    positions = torch.arange(length, device=spans.device)
    return (positions >= spans[..., :1]) & (positions < spans[..., 1:])


def span_mean(hidden: Tensor, spans: Tensor) -> Tensor:
    """Mean of hidden [B, T, H] over each span [B, S, 2] -> [B, S, H]; zeros for empty spans."""
    inside = span_mask(spans, hidden.shape[1]).to(hidden.dtype)  # [B, S, T]
    return inside @ hidden / inside.sum(-1, keepdim=True).clamp(min=1)


def child_key_mask(node_children: Tensor, word_spans: Tensor, node_mask: Tensor, length: int) -> Tensor:
    """Which keys each node attends to in layer 2: [B, N, length + N] bool over (tokens ; nodes).

    Node p sees itself, its phrase children and the wordpieces of its word children; padding nodes see nothing.
    """
    B, N, _ = node_children.shape
    is_word = node_children < 0  # [B, N, 2]
    words = (-node_children - 1).clamp(min=0)
    pieces = word_spans.gather(1, words.view(B, 2 * N, 1).expand(-1, -1, 2)).view(B, N, 2, 2)
    token_keys = (span_mask(pieces, length) & is_word[..., None]).any(2)  # [B, N, length]
    child_nodes = F.one_hot(node_children.clamp(min=0), N).bool() & ~is_word[..., None]  # [B, N, 2, N]
    node_keys = child_nodes.any(2) | torch.eye(N, dtype=torch.bool, device=node_mask.device)  # [B, N, N]
    return torch.cat([token_keys, node_keys], -1) & node_mask[..., None]


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the True keys only; rows with no key (padding) come out all zero, never NaN."""
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores.softmax(-1) * mask


def bottom_up(states: tuple[Tensor, ...], node_height: Tensor, node_mask: Tensor,
              compose: Callable[[Tensor, Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
    """Fill node states [B, N, ...] level by level, leaves first: a node's children are always lower.

    `compose(b, n, states)` gets the (batch, node) indices of one height level, [M] each, and returns their new
    states, [M, ...] each. Only that level's nodes are computed, so the work is one pass over the nodes.
    """
    levels = int(node_height.max()) if node_height.numel() else 0
    for level in range(1, levels + 1):
        b, n = ((node_height == level) & node_mask).nonzero(as_tuple=True)
        states = tuple(s.index_put((b, n), new) for s, new in zip(states, compose(b, n, states)))
    return states


# ---- SentiBERT ------------------------------------------------------------------------------------------------
class Attention(nn.Module):
    """The authors' attention: score = tanh(MLP(query) . key / 4), softmax over the allowed keys.

    query [B, Q, H], keys [B, K, H], mask [B, Q, K] -> (attended [B, Q, H], weights [B, Q, K]).
    """

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.query_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SELU(), nn.Dropout(dropout),
                                       nn.Linear(hidden, hidden), nn.SELU(), nn.Dropout(dropout))

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        # tanh bounds the scores to [-1, 1]: the attention stays soft (the authors' choice, kept as is)
        scores = torch.tanh(self.query_mlp(query) @ keys.transpose(1, 2) / 4)
        weights = masked_softmax(scores, mask)
        return weights @ keys, weights


def fuse(hidden: int, dropout: float) -> nn.Sequential:
    """FFN([state ; attended]) -> state, the authors' 2H -> 2H -> H SELU block."""
    return nn.Sequential(nn.Linear(2 * hidden, 2 * hidden), nn.SELU(), nn.Dropout(dropout),
                         nn.Linear(2 * hidden, hidden), nn.SELU())


class PhraseComposition(nn.Module):
    """SentiBERT's composition: encoder states [B, T, H] -> node states [B, N, H] (see the module docstring).

    Ablations: `attend_tokens=False` uses the query q_p (the scaled span sum) as h_p; `attend_children=False`
    skips layer 2 (g_p = h_p); `recursive=True` composes bottom-up, one tree level at a time, so a node's layer-2
    keys are its children's final states instead of their layer-1 states (the original is a single hop).
    """

    def __init__(self, hidden: int, dropout: float = 0.1, attend_tokens: bool = True, attend_children: bool = True,
                 recursive: bool = False):
        super().__init__()
        if recursive and not attend_children:
            raise ValueError("recursive composition needs attend_children=True: children are what it composes")
        self.attend_tokens, self.attend_children, self.recursive = attend_tokens, attend_children, recursive
        self.transform = nn.Linear(hidden, hidden)
        self.token_attention = Attention(hidden, dropout)
        self.token_fuse = fuse(hidden, dropout)
        self.child_attention = Attention(hidden, dropout)
        self.child_fuse = fuse(hidden, dropout)
        self.out1, self.out2 = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)  # one LayerNorm used twice, as in the authors' code

    def forward(self, hidden: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """-> node states [B, N, H], attentions {"tokens": [B, N, T], "children": [B, N, T + N]} (those computed)."""
        tokens = self.transform(hidden)  # [B, T, H]
        T = tokens.shape[1]
        attentions = {}

        # layer 1: each node attends to the wordpieces of its own span
        in_span = span_mask(batch["node_spans"], T)  # [B, N, T]
        span_sum = in_span.to(tokens.dtype) @ tokens  # [B, N, H]
        query = span_sum / (in_span.sum(-1, keepdim=True) + 1)
        if self.attend_tokens:
            attended, attentions["tokens"] = self.token_attention(query, tokens, in_span)
            phrase = self.token_fuse(torch.cat([query, attended], -1))  # h: [B, N, H]
        else:
            phrase = query
        if not self.attend_children:
            return self.output(phrase), attentions

        # layer 2: each node attends to itself, its phrase children and its word children's wordpieces
        key_mask = child_key_mask(batch["node_children"], batch["word_spans"], batch["node_mask"], T)  # [B, N, T+N]
        if not self.recursive:
            composed, attentions["children"] = self.compose(phrase, torch.cat([tokens, phrase], 1), key_mask)
            return composed, attentions

        def compose_level(b: Tensor, n: Tensor, states: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            # nodes not composed yet (this level, itself included) still hold h; lower levels hold final states
            keys = torch.cat([tokens, states[0]], 1)[b]  # [M, T+N, H]
            out, weights = self.compose(phrase[b, n, None], keys, key_mask[b, n, None])
            return out[:, 0], weights[:, 0]

        no_attention = key_mask.new_zeros(key_mask.shape, dtype=tokens.dtype)
        composed, attentions["children"] = bottom_up((phrase, no_attention), batch["node_height"],
                                                     batch["node_mask"], compose_level)
        return composed, attentions

    def compose(self, phrase: Tensor, keys: Tensor, key_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Layer 2 and the output block: h [B, Q, H], keys [B, K, H], mask [B, Q, K] -> states, weights."""
        attended, weights = self.child_attention(phrase, keys, key_mask)
        return self.output(self.child_fuse(torch.cat([phrase, attended], -1))), weights

    def output(self, state: Tensor) -> Tensor:
        return self.norm(F.gelu(self.out2(self.norm(F.gelu(self.out1(state))))))


# ---- Tree-LSTM ------------------------------------------------------------------------------------------------
class TreeLSTMComposition(nn.Module):
    """Binary constituency Tree-LSTM (Tai et al., 2015, the N-ary variant with N = 2 and a forget gate per child).

    Words are the leaves: leaf states come from the word vectors; internal nodes have no input, only their two
    children. word_states [B, W, H] -> node states [B, N, H] (the h of each node).
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.leaf = nn.Linear(hidden, 3 * hidden)  # input, output, update gates
        self.node = nn.Linear(2 * hidden, 5 * hidden)  # input, left forget, right forget, output, update

    def forward(self, word_states: Tensor, batch: dict[str, Tensor]) -> Tensor:
        i, o, u = self.leaf(word_states).chunk(3, -1)
        word_c = torch.sigmoid(i) * torch.tanh(u)
        words = torch.cat([torch.sigmoid(o) * torch.tanh(word_c), word_c], -1)  # (h ; c): [B, W, 2H]
        children = batch["node_children"]  # [B, N, 2]

        def compose_level(b: Tensor, n: Tensor, states: tuple[Tensor]) -> tuple[Tensor]:
            kids = children[b, n, :, None]  # [M, 2, 1]
            word_kids = words[b[:, None], (-kids[..., 0] - 1).clamp(min=0)]  # [M, 2, 2H]
            node_kids = states[0][b[:, None], kids[..., 0].clamp(min=0)]
            h, c = torch.where(kids < 0, word_kids, node_kids).chunk(2, -1)  # [M, 2, H] each
            i, f_left, f_right, o, u = self.node(h.flatten(1)).chunk(5, -1)
            cell = (torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f_left) * c[:, 0]
                    + torch.sigmoid(f_right) * c[:, 1])
            return (torch.cat([torch.sigmoid(o) * torch.tanh(cell), cell], -1),)

        nodes = words.new_zeros(*children.shape[:2], words.shape[-1])  # (h ; c): [B, N, 2H]
        (nodes,) = bottom_up((nodes,), batch["node_height"], batch["node_mask"], compose_level)
        return nodes[..., :word_states.shape[-1]]
