"""Models by name: the bundles shipped inside the package, and the one loader that predict, serve, evaluate and
`sentibert.load_model` share (so a damaged checkpoint gets the same one-line error everywhere).

`sentibert predict --model NAME`, `sentibert serve --model NAME` and `sentibert evaluate checkpoint=NAME` take:

  minilm  resources/sentibert        SentiBERT on MiniLM-L6 with LoRA adapters; the default: it needs nothing beyond
                                     this package and its dependencies
  mpnet   resources/sentibert-mpnet  SentiBERT on MPNet-base (all-mpnet-base-v2) with LoRA adapters: more accurate
                                     (its MODEL_CARD.md), slower, and it needs the MPNet encoder (`make mpnet`)
  DIR     a model saved with save_pretrained, or a training run directory (its best_model/)

A bundle is a `save_pretrained(trainable_only=True)` directory (float16 adapters, composition and head; config.json;
the tokenizer) with a MODEL_CARD.md; its frozen encoder is the installed one, named in its config.json. A bundle
name wins over a directory of the same name (write ./minilm for the directory).
"""
from __future__ import annotations

from pathlib import Path

from sentibert.models.checkpoint import CheckpointError
from sentibert.models.encoder import EncoderNotFound
from sentibert.models.model import CONFIG_FILE, TreeSentimentModel
from sentibert.runs import BEST_MODEL

RESOURCES = Path(__file__).resolve().parent / "resources"
BUNDLES = {"minilm": RESOURCES / "sentibert", "mpnet": RESOURCES / "sentibert-mpnet"}
DEFAULT_MODEL = "minilm"


def installed_bundles() -> list[str]:
    """The bundle names whose directory this installation has."""
    return [name for name, path in BUNDLES.items() if (path / CONFIG_FILE).is_file()]


def model_dir(model: str | Path) -> Path:
    """The checkpoint directory a bundle name, a save_pretrained directory or a run directory stands for."""
    if str(model) in BUNDLES:
        path = BUNDLES[str(model)]
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f"the {model} model is not bundled with this installation (no {path}): use "
                                  f"{' or '.join(installed_bundles()) or 'a checkpoint directory'}")
        return path
    path = Path(model)
    if not path.is_dir():
        raise CheckpointError(f"{model}: neither a bundled model ({', '.join(BUNDLES)}) nor a directory: give a "
                              f"model saved with save_pretrained, such as a training run's {BEST_MODEL}/")
    if not (path / CONFIG_FILE).exists() and (path / BEST_MODEL / CONFIG_FILE).exists():
        path = path / BEST_MODEL
    return path


def load_checkpoint(model: str | Path = DEFAULT_MODEL, merge_lora: bool = False) -> TreeSentimentModel:
    """The model a name or directory stands for (`model_dir`), named after it (`TreeSentimentModel.name`: outputs
    say which model answered). merge_lora: fold LoRA adapters into the encoder (inference only). Errors are
    CheckpointErrors (ValueErrors) or FileNotFoundErrors, in one line naming the file and the fix."""
    path = model_dir(model)
    try:
        loaded = TreeSentimentModel.from_pretrained(path)
    except EncoderNotFound as err:  # a bundle over an encoder that is not installed (mpnet: `make mpnet`)
        raise CheckpointError(f"model {str(model)!r} needs its encoder: {err}") from None
    loaded.name = str(model)
    return loaded.merge_lora() if merge_lora else loaded
