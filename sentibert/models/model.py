"""Tree sentiment models: an encoder, node states from its last layer, a 5-class head on every phrase node.

`TreeSentimentModel` owns the encoder, dropout, phrase head, losses, save/load and batched prediction; each model
is one small subclass implementing `node_states(hidden, batch)`:
  SentiBERT  the paper's composition (attention to tokens, then to children; `sentibert.models.composition`)
  MeanPool   the paper's BERT*: a phrase is the mean of its wordpieces
  CLSPool    the root is the [CLS] state, every other phrase the mean of its wordpieces
  TreeLSTM   a binary constituency Tree-LSTM over the encoder's word states (Tai et al., 2015)
All node states have the encoder's hidden size H; the sentence prediction is the root node (index 0).

Batches follow `sentibert.data.spans`. With `mlm=True` (the paper's pre-training stage on SST, `sentibert.models.pretraining`)
the encoder keeps a masked-LM head (the checkpoint's, or a new one tied to the input embeddings), `forward` adds its
loss when the batch has `mlm_labels`, and the phrase head is the authors' pre-training head, dense -> GELU ->
LayerNorm -> linear. Fine-tuning from such a checkpoint (`mlm=False`) drops both and starts a new linear head.

Checkpoints are a directory: config.json (model class, constructor kwargs, class names, the encoder's transformers
config), model.safetensors and the tokenizer files; loading needs neither the original encoder nor a network. A
damaged checkpoint (config, tokenizer or weights) is a CheckpointError naming the file and the fix.
"""
from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn
from transformers import (AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer, PretrainedConfig,
                          PreTrainedTokenizerBase)

from sentibert import __version__
from sentibert.config import ModelConfig as Defaults, SentiBERTConfig as SentiBERTDefaults  # the defaults' one home
from sentibert.data.labels import label_names as default_label_names
from sentibert.data.spans import IGNORE, EncodedTree, collate, encode_tree
from sentibert.data.tree import BinaryTree
from sentibert.io import atomic_write, atomic_write_json, wrapped_os_error
from sentibert.models.composition import PhraseComposition, TreeLSTMComposition, span_mean
from sentibert.models.checkpoint import CheckpointError, read_checkpoint_json
from sentibert.models.encoder import load_tokenizer, quiet_loading, resolve_encoder
from sentibert.models.pretraining import MLM_IGNORE

Tensor = torch.Tensor
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer_config.json"


def mean_cross_entropy(logits: Tensor, labels: Tensor, ignore: int) -> Tensor:
    """Cross-entropy averaged over the labelled positions; 0 (not NaN) when nothing is labelled."""
    total = F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=ignore, reduction="sum")
    return total / (labels != ignore).sum().clamp(min=1)


@dataclass
class TreePrediction:
    """One tree's predictions, in the tree's node order; nodes dropped by truncation have None.

    The attention maps (SentiBERT, when asked) have a row per node (zeros for dropped nodes):
      token_attention  [len(tree), len(wordpieces)]                  layer 1, over the wordpieces
      child_attention  [len(tree), len(wordpieces) + len(tree)]      layer 2, over the wordpieces, then the nodes
    """
    tree: BinaryTree
    probs: list[list[float] | None]  # per node: num_classes probabilities
    labels: list[int | None]  # per node: argmax class
    wordpieces: list[str]  # the encoder's input, [CLS] and [SEP] included
    token_attention: Tensor | None = None
    child_attention: Tensor | None = None
    label_names: tuple[str, ...] = ()  # the model's class names, lowest class first
    model: str | None = None  # the name of the model that predicted (`TreeSentimentModel.name`)

    @property
    def label(self) -> int | None:
        """The sentence's prediction: the root's."""
        return self.labels[0]

    @property
    def dropped(self) -> list[bool]:
        return [p is None for p in self.probs]


class TreeSentimentModel(nn.Module):
    """Encoder + node states + phrase head. Subclasses implement `node_states`.

    encoder: a name or path for `sentibert.models.encoder` (weights loaded), or a transformers config (random weights:
    `from_pretrained` loads them next). root_only: supervise the root node only. mlm: keep a masked-LM head, and
    use the pre-training phrase head. max_length: the longest input in wordpieces (None: the encoder's limit).
    lora_rank: > 0 freezes the encoder and trains LoRA adapters of this rank in it (peft); the composition and the
    head train in full. lora_targets: peft's `target_modules`: None for its defaults for the encoder type (query and
    value), `all-linear` for every linear layer of the encoder.

    `label_names` are the classes' names (saved in config.json; training sets the task's, `sentibert.data.labels`);
    `name` says which model this is in outputs (set by whoever loads it: a bundle's name or a checkpoint's path).
    """
    name: str | None = None
    # Trained weights that a forward leaves without a gradient: DDP must look for them (an extra pass each step).
    unused_parameters: bool = False

    registry: dict[str, type[TreeSentimentModel]] = {}  # class name -> class, for from_pretrained

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        TreeSentimentModel.registry[cls.__name__] = cls

    def __init__(self, encoder: str | PretrainedConfig = "minilm", num_classes: int = Defaults.num_classes,
                 dropout: float = Defaults.dropout, root_only: bool = Defaults.root_only, mlm: bool = Defaults.mlm,
                 max_length: int | None = None, lora_rank: int = Defaults.lora_rank,
                 lora_targets: str | None = Defaults.lora_targets):
        super().__init__()
        auto = AutoModelForMaskedLM if mlm else AutoModel  # a checkpoint without an MLM head gets a new, tied one
        if isinstance(encoder, PretrainedConfig):
            self.backbone, self.tokenizer = auto.from_config(encoder, trust_remote_code=False), None
        else:
            self.tokenizer = load_tokenizer(encoder)
            with quiet_loading():
                self.backbone = auto.from_pretrained(resolve_encoder(encoder), trust_remote_code=False)
            self.backbone.train()  # from_pretrained leaves it in eval mode
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None  # unused: its weights would get no gradient (DDP complains) and fill checkpoints
        if lora_rank:
            self.add_lora(lora_rank, dropout, mlm, lora_targets)
        self.hparams = dict(encoder=encoder if isinstance(encoder, str) else None, num_classes=num_classes,
                            dropout=dropout, root_only=root_only, mlm=mlm, max_length=max_length,
                            lora_rank=lora_rank, lora_targets=lora_targets)  # constructor kwargs, saved in config.json
        self.hidden_size = self.backbone.config.hidden_size
        self.root_only = root_only
        self.dropout = nn.Dropout(dropout)
        self.new_head(num_classes, pretraining=mlm)

    def add_lora(self, rank: int, dropout: float, mlm: bool, targets: str | None = None) -> None:
        """Freeze the encoder and add trainable LoRA adapters to it (alpha = rank: the adapters' scale is 1)."""
        from peft import LoraConfig, inject_adapter_in_model

        if mlm:
            raise ValueError("lora_rank > 0 fine-tunes adapters; masked-LM pre-training (mlm=true) needs the full "
                             "encoder")
        self.backbone.requires_grad_(False)
        config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=dropout, target_modules=targets)
        inject_adapter_in_model(config, self.backbone)

    def merge_lora(self) -> TreeSentimentModel:
        """For inference: fold the LoRA adapters into the encoder's weights (plain encoder speed); no more training
        of the adapters after this. A no-op without LoRA."""
        from peft.tuners.lora import LoraLayer

        for name, module in list(self.backbone.named_modules()):
            if isinstance(module, LoraLayer):
                module.merge()
                parent, child = name.rsplit(".", 1)
                setattr(self.backbone.get_submodule(parent), child, module.get_base_layer())
        return self

    def new_head(self, num_classes: int, pretraining: bool = False) -> None:
        """A freshly initialised phrase head: linear, or the authors' pre-training head."""
        H = self.hidden_size
        self.head = (nn.Sequential(nn.Linear(H, H), nn.GELU(), nn.LayerNorm(H, eps=1e-12), nn.Linear(H, num_classes))
                     if pretraining else nn.Linear(H, num_classes))
        self.init_new_weights(self.head)
        self.label_names = default_label_names(num_classes)  # a new head: training then sets its task's names

    @property
    def encoder(self) -> nn.Module:
        """The transformer itself, without the MLM head."""
        return self.backbone.base_model

    @property
    def max_length(self) -> int:
        """Longest input in wordpieces: `max_length` (encoder.max_length), within the tokenizer's and the position
        embeddings' limits (some tokenizers have no real limit of their own)."""
        limits = (self.hparams.get("max_length"), self.tokenizer.model_max_length,
                  getattr(self.backbone.config, "max_position_embeddings", None))
        return min(limit for limit in limits if limit)

    def init_new_weights(self, module: nn.Module) -> None:
        """BERT's initialisation, as in the authors' code, for layers no checkpoint provides."""
        std = getattr(self.backbone.config, "initializer_range", 0.02)
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=std)
                nn.init.zeros_(layer.bias)

    def node_states(self, hidden: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Encoder states [B, T, H] -> node states [B, N, H], and attention maps by name (may be empty)."""
        raise NotImplementedError

    # ---- forward ------------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor], return_attentions: bool = False) -> dict[str, Tensor]:
        """-> logits [B, N, C]; loss when the batch has labels (plus mlm_loss when it has mlm_labels: loss is
        then phrase_loss + mlm_loss); attentions when asked."""
        hidden, mlm_loss = self.encode(batch)
        states, attentions = self.node_states(hidden, batch)
        logits = self.head(self.dropout(states))
        out = {"logits": logits}
        if "labels" in batch:
            labels = batch["labels"]
            if self.root_only:
                labels = labels.masked_fill(torch.arange(labels.shape[1], device=labels.device) > 0, IGNORE)
            out["loss"] = out["phrase_loss"] = mean_cross_entropy(logits, labels, IGNORE)
        if mlm_loss is not None:
            out["mlm_loss"] = mlm_loss
            out["loss"] = out.get("phrase_loss", 0) + mlm_loss
        if return_attentions:
            out["attentions"] = attentions
        return out

    def encode(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """-> the encoder's last layer [B, T, H], and the MLM loss when the batch has mlm_labels."""
        inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        if "mlm_labels" not in batch:
            return self.encoder(**inputs).last_hidden_state, None
        if not self.hparams["mlm"]:
            raise ValueError("the batch has mlm_labels but the model has no MLM head: build it with mlm=True")
        out = self.backbone(**inputs, output_hidden_states=True)
        return out.hidden_states[-1], mean_cross_entropy(out.logits, batch["mlm_labels"], MLM_IGNORE)

    # ---- prediction ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_trees(self, trees: Sequence[BinaryTree], batch_size: int = 32,
                      attentions: bool = False) -> list[TreePrediction]:
        """Predict every phrase of every tree, in eval mode; `batch_size` trees per forward pass, grouped by length
        (similar lengths pad little), returned in the input's order."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        items = [encode_tree(tree, self.tokenizer, self.max_length) for tree in trees]
        order = sorted(range(len(trees)), key=lambda i: len(items[i].input_ids))
        predictions: list[TreePrediction | None] = [None] * len(trees)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collate([(i, items[i]) for i in chunk], self.tokenizer.pad_token_id)
            # No labels: nothing to score here, and gold labels need not be in this model's classes.
            out = self({k: v.to(device) for k, v in batch.items() if k != "labels"}, return_attentions=attentions)
            probs = out["logits"].float().softmax(-1).cpu()
            maps = {name: a.float().cpu() for name, a in out.get("attentions", {}).items()}
            key_nodes_start = batch["input_ids"].shape[1]  # layer-2 keys: all T tokens, then the nodes
            for row, i in enumerate(chunk):
                predictions[i] = self._tree_prediction(
                    trees[i], items[i], probs[row], {name: a[row] for name, a in maps.items()}, key_nodes_start)
        self.train(was_training)
        return predictions

    def _tree_prediction(self, tree: BinaryTree, item: EncodedTree, probs: Tensor, maps: dict[str, Tensor],
                         key_nodes_start: int) -> TreePrediction:
        """Map one tree's batch rows (kept nodes, padded) back to the tree's own nodes."""
        kept, length, n = torch.tensor(item.kept_nodes, dtype=torch.long), len(item.input_ids), len(item.kept_nodes)
        node_probs: list[list[float] | None] = [None] * len(tree)
        node_labels: list[int | None] = [None] * len(tree)
        for row, node in enumerate(item.kept_nodes):
            node_probs[node], node_labels[node] = probs[row].tolist(), int(probs[row].argmax())
        prediction = TreePrediction(tree, node_probs, node_labels, self.tokenizer.convert_ids_to_tokens(item.input_ids),
                                    label_names=tuple(self.label_names), model=self.name)
        if "tokens" in maps:
            prediction.token_attention = torch.zeros(len(tree), length)
            prediction.token_attention[kept] = maps["tokens"][:n, :length]
        if "children" in maps:
            prediction.child_attention = torch.zeros(len(tree), length + len(tree))
            prediction.child_attention[kept, :length] = maps["children"][:n, :length]
            prediction.child_attention[kept[:, None], length + kept] = \
                maps["children"][:n, key_nodes_start:key_nodes_start + n]
        return prediction

    # ---- save / load --------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, trainable_only: bool = False,
                        dtype: torch.dtype | None = None) -> Path:
        """Write tokenizer files, model.safetensors, then config.json (last: it marks a complete checkpoint).

        trainable_only: save only the weights that train (with LoRA: adapters, composition, head), in `dtype` if
        given; loading then takes the frozen rest from the encoder named in `kwargs.encoder` (a small bundle)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(directory)
        if trainable_only:
            if not self.hparams["encoder"]:
                raise ValueError("trainable_only needs a model built from a named encoder, to take the rest from")
            state = {name: p.detach().to(dtype or p.dtype).contiguous() for name, p in self.named_parameters()
                     if p.requires_grad}
            write = lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"})
        else:  # save_model (unlike save_file) accepts tied weights such as the MLM decoder and the input embeddings
            write = lambda tmp: save_model(self, str(tmp))
        try:
            atomic_write(directory / WEIGHTS_FILE, write)
        except SafetensorError as err:  # a full disk, in safetensors' words
            raise wrapped_os_error(err, directory / WEIGHTS_FILE) from err
        atomic_write_json(directory / CONFIG_FILE, {
            "model": type(self).__name__, "kwargs": self.hparams, "label_names": list(self.label_names),
            "weights": "trainable" if trainable_only else "all", "encoder_config": self.backbone.config.to_dict(),
            "sentibert_version": __version__})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides) -> TreeSentimentModel:
        """Load a checkpoint; `overrides` replace saved constructor kwargs (dropout, root_only, ...), not the
        architecture: the encoder always comes from the checkpoint. A different `num_classes` keeps everything
        but the phrase head, which is new (the paper's transfer from SST to other label sets).

        `mlm=False` on a pre-training checkpoint drops its MLM head, for fine-tuning.
        """
        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory} is not a sentibert checkpoint: {name} is missing")
        config = read_checkpoint_json(directory / CONFIG_FILE)  # CheckpointError: damaged, or would run code
        read_checkpoint_json(directory / TOKENIZER_FILE)
        model_class = TreeSentimentModel.registry.get(config.get("model"))
        if model_class is None or not issubclass(model_class, cls):
            raise ValueError(f"{directory} holds a {config.get('model')!r} model, not a {cls.__name__}")
        _check_config(config, directory / CONFIG_FILE, model_class)
        tokenizer = _load_tokenizer(directory)  # before the model: a damaged file fails fast
        kwargs = {**config["kwargs"], **overrides}
        saved_mlm = config["kwargs"]["mlm"]
        if kwargs["mlm"] and not saved_mlm:
            raise ValueError(f"{directory} has no MLM head to pre-train with; start pre-training from the encoder")
        saved_classes = config["kwargs"]["num_classes"]
        try:
            encoder = AutoConfig.for_model(**config["encoder_config"])
        except Exception as err:  # ValueError, TypeError, or huggingface_hub's validation errors (plain Exceptions)
            reason = str(err).partition("\n")[0].partition(". ")[0]  # not the list of every model type it knows
            raise CheckpointError(f"{directory / CONFIG_FILE}: encoder_config is not a config this version of "
                                  f"transformers can build ({reason})") from None
        partial = config.get("weights") == "trainable"  # the frozen weights come from the named encoder
        if partial:
            encoder = config["kwargs"]["encoder"]
        try:
            model = model_class(**{**kwargs, "mlm": saved_mlm, "num_classes": saved_classes, "encoder": encoder})
        except (TypeError, ValueError) as err:  # a kwarg of the wrong type or value
            raise CheckpointError(f"{directory / CONFIG_FILE}: its kwargs do not build a {model_class.__name__} "
                                  f"({err}); the file is damaged: copy or save the checkpoint again") from None
        model.hparams["encoder"] = config["kwargs"]["encoder"]  # the name it was trained from, for the record
        model.tokenizer = tokenizer
        model.label_names = tuple(config.get("label_names") or model.label_names)  # none saved: the count's names
        try:
            if partial:
                model.load_trainable(load_file(directory / WEIGHTS_FILE), directory / WEIGHTS_FILE)
            else:
                load_model(model, str(directory / WEIGHTS_FILE))
        except SafetensorError as err:  # a truncated or overwritten file
            raise CheckpointError(f"{directory / WEIGHTS_FILE}: damaged or truncated ({err}); copy or save the "
                                  "checkpoint again") from None
        except RuntimeError as err:  # torch's state-dict mismatch: missing, unexpected or differently shaped weights
            problems = [line for line in str(err).splitlines()[1:] if line.strip()] or [str(err)]
            more = f"; {len(problems) - 1} more" if len(problems) > 1 else ""
            raise CheckpointError(f"{directory / WEIGHTS_FILE}: its weights do not fit the model its {CONFIG_FILE} "
                                  f"describes ({textwrap.shorten(problems[0], 200)}{more}): the config is damaged or "
                                  "from another version of sentibert: copy or save the checkpoint again") from None
        if kwargs["num_classes"] != saved_classes or saved_mlm and not kwargs["mlm"]:
            # transfer to a task with other classes, or fine-tuning after pre-training: a new linear head
            model.new_head(kwargs["num_classes"])
            model.hparams["num_classes"] = kwargs["num_classes"]
        if saved_mlm and not kwargs["mlm"]:
            model.backbone, model.hparams["mlm"] = model.backbone.base_model, False
        return model


    def load_trainable(self, state: dict[str, Tensor], path: Path) -> None:
        """Load exactly the trainable weights (a `trainable_only` checkpoint), in this model's dtype."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        if set(state) != trainable:
            raise CheckpointError(f"{path}: holds {len(state)} weights, not the model's {len(trainable)} trainable "
                                  f"ones (e.g. {sorted(set(state) ^ trainable)[:3]}); save it again")
        self.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)


def _check_config(config: dict, path: Path, model_class: type[TreeSentimentModel]) -> None:
    """The keys from_pretrained reads: a foreign, damaged or hand-edited config.json is named, not a KeyError or a
    TypeError deep in the constructor."""
    kwargs = config.get("kwargs")
    if not (isinstance(kwargs, dict) and {"mlm", "num_classes", "encoder"} <= kwargs.keys()
            and isinstance(config.get("encoder_config"), dict)):
        raise CheckpointError(f"{path}: not a sentibert checkpoint config (it needs model, kwargs and encoder_config); "
                              "save the model with save_pretrained")
    unknown = sorted(kwargs.keys() - inspect.signature(model_class).parameters.keys())
    if unknown:
        raise CheckpointError(f"{path}: kwargs has {', '.join(map(repr, unknown))}, which {model_class.__name__} does "
                              "not take (damaged, or from another version of sentibert): remove it, or copy or save "
                              "the checkpoint again")
    classes = kwargs["num_classes"]
    if type(classes) is not int or classes < 2:
        raise CheckpointError(f"{path}: num_classes is {classes!r}, not a class count of 2 or more; the file is "
                              "damaged: copy or save the checkpoint again")
    names = config.get("label_names")
    if names is not None and not (isinstance(names, list) and len(names) == classes
                                  and all(isinstance(name, str) and name.strip() for name in names)):
        raise CheckpointError(f"{path}: label_names is not a list of {classes} names, one per class; fix it, or remove "
                              "it to use the default names")


def _load_tokenizer(directory: Path) -> PreTrainedTokenizerBase:
    """A checkpoint's tokenizer, or a CheckpointError naming its damaged file."""
    try:
        return AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    except Exception as err:  # a KeyError, a JSONDecodeError or tokenizers' own plain Exception
        damaged = next((directory / name for name in ("tokenizer.json", TOKENIZER_FILE)
                        if (directory / name).is_file()), directory)
        raise CheckpointError(f"{damaged}: the tokenizer cannot be loaded ({type(err).__name__}: "
                              f"{' '.join(str(err).split())}); the file is damaged: copy or save the checkpoint "
                              "again") from None


# ---- models -------------------------------------------------------------------------------------------------------
class SentiBERT(TreeSentimentModel):
    """The paper's model; the flags are its ablations (see `PhraseComposition`)."""

    def __init__(self, encoder: str | PretrainedConfig = "minilm", num_classes: int = Defaults.num_classes,
                 dropout: float = Defaults.dropout, root_only: bool = Defaults.root_only, mlm: bool = Defaults.mlm,
                 max_length: int | None = None, lora_rank: int = Defaults.lora_rank,
                 lora_targets: str | None = Defaults.lora_targets,
                 attend_tokens: bool = SentiBERTDefaults.attend_tokens,
                 attend_children: bool = SentiBERTDefaults.attend_children,
                 recursive: bool = SentiBERTDefaults.recursive):
        super().__init__(encoder, num_classes, dropout, root_only, mlm, max_length, lora_rank, lora_targets)
        self.hparams.update(attend_tokens=attend_tokens, attend_children=attend_children, recursive=recursive)
        self.composition = PhraseComposition(self.hidden_size, dropout, attend_tokens, attend_children, recursive)
        self.init_new_weights(self.composition)
        # An ablation skips a layer it still builds (its checkpoints hold every model's weights).
        self.unused_parameters = not (attend_tokens and attend_children)

    def node_states(self, hidden, batch):
        return self.composition(hidden, batch)


class MeanPool(TreeSentimentModel):
    """The paper's BERT* baseline: every phrase is the mean of its wordpieces' states."""

    def node_states(self, hidden, batch):
        return span_mean(hidden, batch["node_spans"]), {}


class CLSPool(TreeSentimentModel):
    """[CLS] baseline: the root (the sentence) is the [CLS] state; every other phrase, which has no [CLS] of its
    own, is the mean of its wordpieces' states, as in MeanPool."""

    def node_states(self, hidden, batch):
        states = span_mean(hidden, batch["node_spans"])  # [B, N, H]
        is_root = torch.arange(states.shape[1], device=states.device)[:, None] == 0  # [N, 1]
        return torch.where(is_root, hidden[:, :1], states), {}


class TreeLSTM(TreeSentimentModel):
    """Binary constituency Tree-LSTM over the encoder: a word's state is the mean of its wordpieces' states."""

    def __init__(self, encoder: str | PretrainedConfig = "minilm", num_classes: int = Defaults.num_classes,
                 dropout: float = Defaults.dropout, root_only: bool = Defaults.root_only, mlm: bool = Defaults.mlm,
                 max_length: int | None = None, lora_rank: int = Defaults.lora_rank,
                 lora_targets: str | None = Defaults.lora_targets):
        super().__init__(encoder, num_classes, dropout, root_only, mlm, max_length, lora_rank, lora_targets)
        self.composition = TreeLSTMComposition(self.hidden_size)
        self.init_new_weights(self.composition)

    def node_states(self, hidden, batch):
        return self.composition(span_mean(hidden, batch["word_spans"]), batch), {}
