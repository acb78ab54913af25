"""A saved model directory (a checkpoint, or a local encoder): the error for one that cannot, or must not, be loaded,
and the safe reading of its JSON files. Below both sentibert.models.encoder (local encoders) and
sentibert.models.model (checkpoints), which raise it."""
from __future__ import annotations

import json
from pathlib import Path


class CheckpointError(ValueError):
    """A model directory that cannot, or must not, be loaded; the message names the file and the fix."""


SAFE_ATTENTION = (None, "eager", "sdpa")  # any other attn_implementation may fetch and run kernel code from the hub


def read_checkpoint_json(path: Path) -> dict:
    """A checkpoint's config.json or tokenizer_config.json, or a CheckpointError naming it: when it is damaged, or
    when loading it would run code: an `auto_map` (classes from .py files beside it or on the hub), or an attention
    implementation other than eager or sdpa. Every from_pretrained also passes trust_remote_code=False; this check
    comes first, so the error is ours, and transformers never asks on stdin whether to run the code."""
    try:
        config = json.loads(path.read_bytes())
    except ValueError as err:  # bad JSON or not UTF-8
        raise CheckpointError(f"{path}: not valid JSON ({err}); the checkpoint is damaged: copy or save it "
                              "again") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a JSON object; the checkpoint is damaged: copy or save it again")
    for key, value in _json_items(config):
        if key == "auto_map":
            raise CheckpointError(f"{path}: has an auto_map, custom code that loading would run; sentibert never runs "
                                  "a checkpoint's code: use a checkpoint of a standard transformers model")
        if key in ("attn_implementation", "_attn_implementation") and value not in SAFE_ATTENTION:
            raise CheckpointError(f"{path}: attn_implementation {value!r} would load kernel code; set it to "
                                  "\"sdpa\" or \"eager\", or remove it")
    return config


def _json_items(obj):
    """Every (key, value) of a JSON document, nested objects included (sub-configs carry their own)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield key, value
        yield from _json_items(value)
