"""The sentiment of every phrase of any text (`sentibert predict`, sentibert.commands.predict):

    echo "Not bad at all." | sentibert predict                       # the bundled model
    sentibert predict --checkpoint runs/sst_phrase/DATE/best_model "Not bad at all." "A dull, lifeless film."
    sentibert predict --checkpoint DIR --in reviews.txt --format html --out reviews.html
    echo "Not bad at all." | sentibert predict --checkpoint DIR --in - --format json

Each text is one sentence. All texts are parsed in one call (`sentibert.parsing.parse`: batched and cached), the
trees go through the model `--batch-size` at a time, grouped by length (`predict_trees`), and every phrase node gets
its 5-class distribution and label, plus the attention maps of models that have them (SentiBERT) when the output
shows them (not the text format). `--precision auto` (the default) runs the parser and the model in bf16 where the
hardware computes in it natively (`sentibert.training.precision`), else in float32; `--precision 32` always gives
float32, as `sentibert evaluate` does. Speed, end to end: experiments/bench/predict.py. `predict()` returns the
model's `TreePrediction`s, which `sentibert.evaluation.render` draws as text (the default), JSON (its schema is in
`sentibert.evaluation.render`'s docstring), HTML or PNG. Without `--format`, the `--out` file's suffix picks the format.

Input rules: texts are plain text, so an HTML entity such as `&amp;` stays as typed (every output escapes what it
shows). An empty or whitespace-only text is an error, and so is a sentence with more wordpieces than the
encoder takes: the model would silently ignore what was cut off.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import torch

from sentibert.data.tree import normalize_token
from sentibert.device import DeviceError, pick_device
from sentibert.evaluation import render
from sentibert.models.model import CONFIG_FILE, TreePrediction, TreeSentimentModel
from sentibert.parsing.parse import load_parser
from sentibert.runs import BEST_MODEL
from sentibert.training.precision import autocast, resolve

TEXT_RENDERERS = {"text": render.to_text, "json": render.to_json_text, "html": render.to_html}
FORMATS = (*TEXT_RENDERERS, "png")
SHOWS_ATTENTION = frozenset({"json", "html", "png"})  # formats that draw attention; text shows labels only
PRECISION = "auto"  # inference's default: bf16 where native (`sentibert.training.precision.resolve`), else float32
BATCH_SIZE = 32  # trees per forward pass, grouped by length; on a 2-core CPU 16 to 64 run alike, 128 slower
SUFFIX_FORMATS = {".txt": "text", ".json": "json", ".html": "html", ".htm": "html", ".png": "png"}
# The model used when no checkpoint is given: a LoRA SentiBERT on MiniLM (its card: MODEL_CARD.md beside it).
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "resources" / "sentibert"


class PredictError(ValueError):
    """Input or a checkpoint `predict` cannot use; the message says which and why."""


def load_model(checkpoint: str | Path | None = None) -> TreeSentimentModel:
    """A save_pretrained directory, a training run directory (its best_model/ is used), or None: the bundled model."""
    if checkpoint is None:
        if not (BUNDLED_MODEL / CONFIG_FILE).is_file():
            raise PredictError(f"no bundled model in this installation ({BUNDLED_MODEL}): pass --checkpoint DIR")
        checkpoint = BUNDLED_MODEL
    path = Path(checkpoint)
    if not path.is_dir():
        raise PredictError(f"checkpoint {path} is not a directory: give a model saved with save_pretrained, "
                           f"such as a training run's {BEST_MODEL}/")
    if not (path / CONFIG_FILE).exists() and (path / BEST_MODEL / CONFIG_FILE).exists():
        path = path / BEST_MODEL
    try:
        return TreeSentimentModel.from_pretrained(path).merge_lora()  # inference only: adapters folded in
    except (FileNotFoundError, ValueError) as err:  # the message names the missing file or the wrong model class
        raise PredictError(str(err)) from None
    except RuntimeError as err:  # torch's state-dict mismatch, listing the missing and unexpected weights
        raise PredictError(f"{path}: its weights do not fit its model class (saved by another version of "
                           f"sentibert?): {err}") from None


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


def check_lengths(trees, tokenizer, limit: int, source: str) -> None:
    """Refuse sentences the model would truncate (wordpieces, [CLS] and [SEP] included, against `limit`: the model's
    max_length, the one it was trained with), as `encode_tree` counts."""
    for n, tree in enumerate(trees, start=1):
        words = [normalize_token(t) for t in tree.tokens]
        length = len(tokenizer(words, is_split_into_words=True, verbose=False)["input_ids"])
        if length > limit:
            raise PredictError(f"{source}:{n}: {length} wordpieces, more than the encoder's limit of {limit}; "
                               "split it into shorter sentences")


def predict(texts: Sequence[str], model: TreeSentimentModel | str | Path | None = None, parser=None,
            batch_size: int = BATCH_SIZE, source: str = "text", attentions: bool = True,
            precision: str = PRECISION, timings: dict[str, float] | None = None) -> list[TreePrediction]:
    """One `TreePrediction` per text, in order: every phrase's probabilities and label, and attention maps.

    model: a loaded model, a checkpoint directory, or None (the bundled model). parser: anything with `parse(texts,
    source)` returning BinaryTrees (default: `sentibert.parsing.parse.load_parser(precision=precision)`). source names
    the texts in error messages (source:n). attentions: compute the maps (False: faster, and None in the
    predictions). precision: the model's, 32, bf16 or auto (`sentibert.training.precision`). timings: if given,
    gets the seconds spent parsing ("parse") and in the model ("model").
    """
    texts = check_texts(texts, source)
    if batch_size < 1:  # range() would give no batches at all (or fail on 0): predictions silently missing
        raise PredictError(f"batch_size must be a positive integer, not {batch_size}")
    if not isinstance(model, TreeSentimentModel):
        model = load_model(model)
    parser = parser or load_parser(precision=precision)
    with timed(timings, "parse"):
        trees = parser.parse(texts, source)  # one call for all texts: the parser batches and caches
    with timed(timings, "model"):
        check_lengths(trees, model.tokenizer, model.max_length, source)
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
