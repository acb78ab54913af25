"""Typed schemas of the Hydra configs under `conf/`, registered in Hydra's ConfigStore.

`conf/train.yaml`, `conf/evaluate.yaml` and `conf/bench.yaml` name their schema first in their defaults list, and every
`conf/model/*.yaml` names the schema of its class, so Hydra composes the YAML *into* these dataclasses:
an unknown key (`trainer.max_epoch=3`) or a wrongly typed value fails at composition, naming the key.
Where defaults live: every default is written once, here; a YAML file sets only what differs from its schema (or from
the file it builds on), which tests/test_config.py checks for every group. The model classes take their defaults
from ModelConfig and SentiBERTConfig (sentibert.models.model), so a model has one set of defaults too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# The config tree: conf/ inside an installed wheel (setup.cfg ships it as sentibert/conf), else conf/ beside the
# package, in a checkout or an editable install. An absolute path: Hydra resolves relative ones against a module
# when the app is started as a console script.
_PACKAGE = Path(__file__).resolve().parent
CONF_DIR = str(_PACKAGE / "conf" if (_PACKAGE / "conf").is_dir() else _PACKAGE.parent / "conf")
# A data root holding a tiny `sst` (48 / 16 / 16 hand-made trees), shipped in the package: tests, smoke runs, and
# `sentibert bench` when SST is not prepared. `${sample_data:}` in a config (conf/paths/default.yaml).
SAMPLE_DATA_DIR = str(_PACKAGE / "resources" / "sample_data")
if not OmegaConf.has_resolver("sample_data"):
    OmegaConf.register_new_resolver("sample_data", lambda: SAMPLE_DATA_DIR)


@dataclass
class PathsConfig:
    """Where things are (conf/paths/default.yaml); every command's config has them."""
    data_dir: str = MISSING  # prepared datasets: data.root's default
    runs_dir: str = MISSING  # run directories: hydra.run.dir's root
    sample_data_dir: str = MISSING  # SAMPLE_DATA_DIR: data=fixture's root


@dataclass
class EncoderConfig:
    name_or_path: str = MISSING  # `minilm`, `tiny`, a hub name or a local directory (sentibert.models.encoder)
    max_length: int = 512  # wordpieces per sentence, special tokens included; longer input is truncated (BERT's 512)


@dataclass
class ModelConfig:
    """Keyword arguments of a `sentibert.models.model` class, built with `hydra.utils.instantiate`."""
    _target_: str = MISSING
    encoder: str = "${encoder.name_or_path}"
    num_classes: int = 5
    dropout: float = 0.1
    root_only: bool = False  # supervise the root only (every node is still predicted)
    mlm: bool = False  # pre-training: an MLM head and the pre-training phrase head (needs trainer.mlm_probability > 0)
    max_length: Optional[int] = "${encoder.max_length}"  # saved with the model: evaluate and predict use it too
    lora_rank: int = 0  # > 0: freeze the encoder, train LoRA adapters of this rank in it (model=sentibert_lora)
    lora_targets: Optional[str] = None  # peft's target_modules: None = its defaults (query, value); all-linear


@dataclass
class SentiBERTConfig(ModelConfig):
    _target_: str = "sentibert.models.model.SentiBERT"
    attend_tokens: bool = True  # phrase = attention over its wordpieces (else their mean)
    attend_children: bool = True  # then attention over itself and its children (else skipped)
    recursive: bool = False  # children's phrase states come from the layer below, bottom-up


@dataclass
class DataConfig:
    dataset: str = MISSING  # a name in sentibert.data.datasets.DATASETS: `sst`, `sst-paper`; or `labelled`
    root: Optional[str] = None  # where `sentibert data prepare` wrote (paths.data_dir); None: $SENTIBERT_DATA_DIR, data
    # > 0: dev is this fraction of train, drawn with `dev_seed` (fixed, so all seeds of a sweep share
    # one dev set) and removed from train. 0: the dataset's own dev split.
    dev_from_train: float = 0.0
    dev_seed: int = 0
    label_view: Optional[str] = None  # train on relabelled trees: sst3 (sentibert.data.labels.LABEL_VIEWS); None: as is
    batch_size: int = 32  # per process; under DDP the effective batch is batch_size x world size
    eval_batch_size: int = 64
    bucket_batches: int = 50  # length-sorted buckets of this many batches (spans.BucketBatchSampler)


@dataclass
class LabelledDataConfig(DataConfig):
    """`data=labelled` (conf/data/labelled.yaml): the user's own labelled text files, parsed into trees; only here do
    the keys below exist, so `data=sst data.train=...` is refused as a typo."""
    train: Optional[str] = None  # a .tsv, .csv or .jsonl file; relative paths from the working directory
    dev: Optional[str] = None  # None: dev is `dev_from_train` of train (a dev file wins over the hold-out)
    test: Optional[str] = None
    num_classes: Optional[int] = None  # required: labels are class ids 0 to num_classes - 1
    text_column: Optional[str] = None  # None: `text`, else GLUE's `sentence` (transfer.TEXT_COLUMNS)
    label_column: str = "label"
    label_names: Optional[list[str]] = None  # one per class, lowest first; a label may be a name; None: numbered


@dataclass
class TrainerConfig:
    lr: float = 2e-5
    weight_decay: float = 0.01  # AdamW; never on biases and LayerNorm weights
    warmup_ratio: float = 0.1  # linear warm-up over this fraction of all steps, then linear decay to 0
    max_epochs: int = 5
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    checkpoint_every_n_steps: int = 500  # besides the checkpoint at the end of every epoch; 0: epochs only
    mlm_probability: float = 0.0  # > 0: add the masked-LM loss; wordpieces not in sentiment words are masked so often
    mlm_sentiment_probability: float = 0.2  # wordpieces of sentiment words (sentibert.models.pretraining)
    mlm_max_predictions: int = 20  # per sentence, besides the cap of round(mlm_probability x length)
    limit_train_batches: Optional[int] = None  # per epoch (debugging / smoke runs)
    limit_eval_batches: Optional[int] = None  # per evaluation, dev and test
    stop_after_steps: Optional[int] = None  # debug: quit abruptly after this many steps, as if killed
    log_every_n_steps: int = 10
    precision: str = "32"  # 32 | bf16 | 16 (float16, CUDA): autocast (sentibert/precision.py); 16 scales the loss
    compile: bool = False  # torch.compile the model (dynamic shapes)
    # DataLoader processes collating training batches ahead of the step (0: in the main process). They help on GPU
    # machines, where the encoder is fast enough for collating to stall it; on a 2-core CPU they cost start-up every
    # epoch and cores the model needs, to save collating, a small share of an epoch. Memory is pinned on CUDA.
    # Any count trains on the same batches in the same order, so a run may resume with another.
    num_workers: int = 0
    device: str = "auto"  # auto: cuda if available, else cpu
    strategy: str = "auto"  # auto: DDP when launched by torchrun with >1 process; ddp: require torchrun
    backend: str = "auto"  # DDP process group: auto = nccl on GPU, gloo on CPU


@dataclass
class LoggerConfig:
    """A logger built with hydra.utils.instantiate (sentibert.training.loggers.build_logger): `_target_` names its
    class; the run directory and the resolved run config are passed when it is built."""
    _target_: str = MISSING


@dataclass
class WandbLoggerConfig(LoggerConfig):
    _target_: str = "sentibert.training.loggers.WandbLogger"
    project: str = "sentibert"
    mode: str = "offline"  # offline (default; `wandb sync` later), online or disabled
    entity: Optional[str] = None
    tags: list[str] = field(default_factory=list)
    name: str = "${name}"  # the run's name


class Select(Enum):
    """Which epoch's model a run keeps (best_model/) and tests."""
    best = "best"  # the best dev `metric`
    last = "last"  # the last epoch: pre-training, where dev is only logged


@dataclass
class TrainConfig:
    paths: PathsConfig = MISSING
    encoder: EncoderConfig = MISSING
    model: Any = MISSING  # typed by the schema each conf/model/*.yaml names
    data: DataConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: Any = MISSING  # typed by the schema each conf/logger/*.yaml names
    name: str = "train"  # run name: output folder and logger run name
    seed: int = 42
    metric: str = "phrase_acc"  # dev metric that picks the epoch (and the sweep objective); its test value is reported
    select: Select = Select.best
    test: bool = True  # evaluate the selected model on test once, at the end (pre-training: false)
    resume: bool = False  # continue from the run directory's last checkpoint (set hydra.run.dir to it)
    overwrite: bool = False  # replace the run that the run directory holds (else refused, unless resume)
    resume_allow_changes: list[str] = field(default_factory=list)  # keys a resume may change (else refused)
    init_from: Optional[str] = None  # start from these weights (a save_pretrained dir, e.g. a pre-training run)


@dataclass
class EvaluateConfig:
    paths: PathsConfig = MISSING
    data: DataConfig = MISSING
    checkpoint: str = MISSING  # a save_pretrained directory, e.g. a run's best_model/
    split: str = "test"
    limit_eval_batches: Optional[int] = None
    device: str = "auto"


@dataclass
class BenchConfig:
    paths: PathsConfig = MISSING
    encoder: EncoderConfig = MISSING
    model: Any = MISSING
    data: DataConfig = MISSING
    split: str = "dev"  # whose trees make the batches (the fixture's when the dataset is not prepared)
    batches: int = 20  # timed batches; each runs every variant, in rotating order
    warmup: int = 3  # untimed batches first
    pad_to: int = 128  # the official implementation's fixed length
    precisions: list[str] = field(default_factory=lambda: ["32", "bf16"])  # a variant for each but 32
    compile: bool = False  # add a torch.compile'd variant (slow to start)
    seed: int = 0
    threads: Optional[int] = None  # torch intra-op threads; None: torch's default
    device: str = "auto"


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="bench_schema", node=BenchConfig)
    cs.store(group="data", name="schema_labelled", node=LabelledDataConfig)
    cs.store(group="model", name="schema_model", node=ModelConfig)
    cs.store(group="model", name="schema_sentibert", node=SentiBERTConfig)
    cs.store(group="logger", name="schema_logger", node=LoggerConfig)
    cs.store(group="logger", name="schema_wandb", node=WandbLoggerConfig)


register()


# ---- ranges ----------------------------------------------------------------------------------------------------
class ConfigError(ValueError):
    """A config value out of its range; the message names the key, the value and the range."""


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is out
    high_open: bool = False  # high itself is out
    optional: bool = False  # null is allowed (and means "none", "all" or "the default")

    def __contains__(self, value: Any) -> bool:
        if value is None:
            return self.optional
        return ((self.low is None or value > self.low or value == self.low and not self.low_open)
                and (self.high is None or value < self.high or value == self.high and not self.high_open))

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = f"{'<' if self.high_open else '<='} {self.high:g}"
        return text + (" (or null)" if self.optional else "")


PROBABILITY, FRACTION = Range(0, 1), Range(0, 1, high_open=True)
COUNT, OPTIONAL_COUNT = Range(1), Range(1, optional=True)
# Every key with a range, whichever command's config holds it (keys a config lacks are skipped). Structured configs
# check types, not ranges (OmegaConf runs no __post_init__): `validate` checks these before a command loads anything.
RANGES: dict[str, Range] = {
    "trainer.lr": Range(0, low_open=True),
    "trainer.weight_decay": Range(0),
    "trainer.warmup_ratio": PROBABILITY,
    "trainer.max_epochs": COUNT,
    "trainer.grad_clip": Range(0),
    "trainer.checkpoint_every_n_steps": Range(0),
    "trainer.mlm_probability": FRACTION,
    "trainer.mlm_sentiment_probability": PROBABILITY,
    "trainer.mlm_max_predictions": COUNT,
    "trainer.limit_train_batches": OPTIONAL_COUNT,
    "trainer.limit_eval_batches": OPTIONAL_COUNT,
    "trainer.stop_after_steps": OPTIONAL_COUNT,
    "trainer.log_every_n_steps": COUNT,
    "trainer.num_workers": Range(0),
    "data.batch_size": COUNT,
    "data.eval_batch_size": COUNT,
    "data.bucket_batches": COUNT,
    "data.dev_from_train": FRACTION,
    "data.num_classes": Range(2, optional=True),  # data=labelled
    "encoder.max_length": Range(2),  # [CLS] and [SEP] alone take two wordpieces
    "model.dropout": FRACTION,
    "limit_eval_batches": OPTIONAL_COUNT,  # evaluate
    "batches": COUNT,  # bench
    "warmup": Range(0),
    "threads": OPTIONAL_COUNT,
}


def validate(cfg: DictConfig) -> DictConfig:
    """Refuse a value out of its range (RANGES) with a ConfigError naming the key, the value and the range."""
    for key, allowed in RANGES.items():
        if OmegaConf.select(cfg, key, default=MISSING) is MISSING:  # not a key of this command's config
            continue
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}={value} is out of range: use a value {allowed}")
    return cfg
