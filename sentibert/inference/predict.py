"""The sentiment of every phrase of any text (`sentibert predict`, sentibert.commands.predict):

    echo "Not bad at all." | sentibert predict                       # the default bundled model (minilm)
    sentibert predict --model mpnet "Not bad at all." "A dull, lifeless film."
    sentibert predict --model runs/sst_phrase/DATE "Not bad at all."   # a run (its best_model/), or --checkpoint DIR
    sentibert predict --model DIR --in reviews.txt --format html --out reviews.html
    echo "Not bad at all." | sentibert predict --model DIR --in - --format json

From Python (`load_model`: a bundle's name or a directory, with its parser):

    from sentibert import load_model
    model = load_model("minilm")
    trees = model.predict(["Not bad at all."])   # TreePredictions: per node labels, probs; label_names

Each text is one sentence. All texts are parsed in one call (`sentibert.parsing.parse`: batched and cached), the
trees go through the model `--batch-size` at a time, grouped by length (`predict_trees`), and every phrase node gets
its distribution over the model's classes and its label, plus the attention maps of models that have them
(SentiBERT) when the output shows them (not the text format). `--precision auto` (the default) runs the parser and
the model in bf16 where the hardware computes in it natively (`sentibert.precision`), else in float32;
`--precision 32` always gives float32, as `sentibert evaluate` does. Speed, end to end:
experiments/bench/predict.py. `predict()` returns the model's `TreePrediction`s, which `sentibert.evaluation.render`
draws as text (the default), JSON (its schema is in `sentibert.evaluation.render`'s docstring), HTML or PNG. Without
`--format`, the `--out` file's suffix picks the format.

Input rules: texts are plain text, so an HTML entity such as `&amp;` stays as typed (every output escapes what it
shows). An empty or whitespace-only text is an error, and so is a sentence with more wordpieces than the
encoder takes (the model would silently ignore what was cut off) or a phrase with none at all (only invisible or
control characters, such as a zero-width space: the model has nothing to read); each error names its text.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from sentibert.bundles import DEFAULT_MODEL, load_checkpoint
from sentibert.data.spans import wordpiece_spans
from sentibert.data.tree import BinaryTree, normalize_token
from sentibert.device import DeviceError, pick_device
from sentibert.evaluation import render
from sentibert.models.model import TreePrediction, TreeSentimentModel
from sentibert.parsing.parse import load_parser
from sentibert.precision import autocast, resolve

TEXT_RENDERERS = {"text": render.to_text, "json": render.to_json_text, "html": render.to_html}
FORMATS = (*TEXT_RENDERERS, "png")
SHOWS_ATTENTION = frozenset({"json", "html", "png"})  # formats that draw attention; text shows labels only
PRECISION = "auto"  # inference's default: bf16 where native (`sentibert.precision.resolve`), else float32
BATCH_SIZE = 32  # trees per forward pass, grouped by length; on a 2-core CPU 16 to 64 run alike, 128 slower
SUFFIX_FORMATS = {".txt": "text", ".json": "json", ".html": "html", ".htm": "html", ".png": "png"}


class PredictError(ValueError):
    """Input `predict` cannot use; the message says which and why."""


def load_network(model: str | Path | TreeSentimentModel | None = DEFAULT_MODEL) -> TreeSentimentModel:
    """A loaded model as it is, else the model a bundle's name or a directory stands for (`sentibert.bundles`;
    None: the default bundle), ready for inference: LoRA adapters folded in."""
    if isinstance(model, TreeSentimentModel):
        return model
    return load_checkpoint(DEFAULT_MODEL if model is None else model, merge_lora=True)


@dataclass
class Pipeline:
    """A model and its parser: raw text in, one `TreePrediction` per text out (what `load_model` returns)."""
    model: TreeSentimentModel
    parser: object  # anything with `parse(texts, source)` returning BinaryTrees
    precision: str = PRECISION

    @property
    def name(self) -> str | None:
        return self.model.name

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.model.label_names)

    def predict(self, texts: Sequence[str], batch_size: int = BATCH_SIZE, attentions: bool = True,
                source: str = "text") -> list[TreePrediction]:
        """Every phrase's label and probabilities over `label_names`, for each text (`predict` below)."""
        return predict(texts, self.model, self.parser, batch_size, source, attentions, self.precision)


def load_model(model: str | Path = DEFAULT_MODEL, device: str = "cpu", parser: str = "auto",
               precision: str = PRECISION, use_cache: bool = True) -> Pipeline:
    """The model a bundle's name (minilm, mpnet) or a directory (a save_pretrained model, a training run) stands
    for, on `device`, with the parser (auto, stanza or bundled; `sentibert.parsing.parse`) loaded and ready:

        model = load_model("minilm")
        trees = model.predict(["Not bad at all."])
    """
    network = load_network(model).to(check_device(device))
    loaded = load_parser(parser, use_cache=use_cache, precision=precision)
    getattr(loaded, "pipeline", None)  # a cached property: Stanza or the parser's model loads now, not on first use
    return Pipeline(network, loaded, precision)


def check_texts(texts: Sequence[str], source: str) -> list[str]:
    if isinstance(texts, str):
        raise PredictError("texts must be a list of strings, not one string")
    texts = list(texts)
    if not texts:
        raise PredictError("no text to predict")
    for n, text in enumerate(texts, start=1):
        if not text.strip():
            raise PredictError(f"{source}:{n}: empty text")
    return texts


def check_wordpieces(trees: Sequence[BinaryTree], tokenizer, limit: int, source: str) -> None:
    """Refuse, naming the text, a sentence the model would truncate (wordpieces, [CLS] and [SEP] included, against
    `limit`: the model's max_length, the one it was trained with, as `encode_tree` counts), and one with a phrase the
    encoder reads nothing in (a zero-width space, a control character, a lone combining accent: no wordpieces)."""
    for n, tree in enumerate(trees, start=1):
        words = [normalize_token(t) for t in tree.tokens]
        encoded = tokenizer(words, is_split_into_words=True, verbose=False)
        if len(encoded["input_ids"]) > limit:
            raise PredictError(f"{source}:{n}: {len(encoded['input_ids'])} wordpieces, more than the encoder's limit "
                               f"of {limit}; split it into shorter sentences")
        read = [end > 0 for _, end in wordpiece_spans(encoded.word_ids(), len(words))]
        empty = next(((start, end) for start, end in tree.spans if not any(read[start:end])), None)
        if empty is not None:
            what = "it" if empty == tree.spans[0] else repr(" ".join(words[empty[0]:empty[1]]))
            raise PredictError(f"{source}:{n}: {' '.join(words)!r}: the encoder reads no wordpieces in {what} (only "
                               "invisible or control characters); remove them")


def predict(texts: Sequence[str], model: TreeSentimentModel | str | Path | None = None, parser=None,
            batch_size: int = BATCH_SIZE, source: str = "text", attentions: bool = True,
            precision: str = PRECISION, timings: dict[str, float] | None = None) -> list[TreePrediction]:
    """One `TreePrediction` per text, in order: every phrase's probabilities and label, and attention maps.

    model: a loaded model, a bundle's name or a checkpoint directory (`load_network`; None: the default bundle).
    parser: anything with `parse(texts, source)` returning BinaryTrees (default:
    `sentibert.parsing.parse.load_parser(precision=precision)`). source names
    the texts in error messages (source:n). attentions: compute the maps (False: faster, and None in the
    predictions). precision: the model's, 32, bf16 or auto (`sentibert.precision`). timings: if given,
    gets the seconds spent parsing ("parse") and in the model ("model").
    """
    texts = check_texts(texts, source)
    if batch_size < 1:  # range() would give no batches at all (or fail on 0): predictions silently missing
        raise PredictError(f"batch_size must be a positive integer, not {batch_size}")
    model = load_network(model)
    parser = parser or load_parser(precision=precision)
    with timed(timings, "parse"):
        trees = parser.parse(texts, source)  # one call for all texts: the parser batches and caches
    with timed(timings, "model"):
        check_wordpieces(trees, model.tokenizer, model.max_length, source)
        device = next(model.parameters()).device
        with autocast(resolve(precision, device), device):
            return model.predict_trees(trees, batch_size, attentions=attentions)


@contextmanager
def timed(timings: dict[str, float] | None, name: str):
    """Add the seconds the block takes to timings[name] (nothing when timings is None)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def check_device(name: str) -> torch.device:
    """--device as a torch.device that exists here (`sentibert.device.pick_device`, as the Hydra commands check
    trainer.device); refused in one line before the model loads."""
    try:
        return pick_device(name, "--device")
    except DeviceError as err:
        raise PredictError(str(err)) from None
