"""`sentibert train [experiment=NAME] [overrides]`: fine-tune a tree sentiment model (a Hydra app, conf/train.yaml).

One run:
- trains on every phrase label of the train split (AdamW without decay on biases and LayerNorm, linear warm-up then
  decay, gradient clipping), in length-bucketed, dynamically padded batches (sentibert.data.spans);
- evaluates dev after each epoch and keeps the best epoch by `metric` (run_dir/best_model, a save_pretrained dir),
  or the last one with `select=last` (pre-training, where dev is only logged);
- evaluates test once, at the end, with that model (unless `test=false`: pre-training);
- with `model.mlm=true` (`experiment=sst_phrase_pretrain`), adds the paper's masked LM (sentibert.models.pretraining);
- checkpoints every `trainer.checkpoint_every_n_steps` steps and every epoch: weights (safetensors), optimizer,
  scheduler, sampler position and every RNG, so `resume=true` (same run directory) continues bit for bit.

The run directory (hydra.run.dir, runs/<name>/<date>/ by default) holds config.yaml (resolved), metrics.json (dev per
epoch, best epoch, test), test_predictions.jsonl (for `sentibert report`), best_model/, checkpoints/ and the logger's
files.

Multi-GPU: `torchrun --nproc_per_node N -m sentibert.commands.train ...` (DDP: nccl on GPUs, gloo on CPUs); rank 0 evaluates
and writes. Data loading is in-process on purpose: trees are encoded once and collating is cheap, and a sampler
consumed only by the training loop makes its position (hence resuming) exact.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import pickle
import random
import shutil
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from sentibert.config import Select
from sentibert.data.datasets import dataset_info, first_batches, load_splits, task_classes
from sentibert.data.labels import relabel
from sentibert.data.spans import BucketBatchSampler, TreeDataset
from sentibert.device import pick_device
from sentibert.evaluation.evaluate import evaluate_model, summary
from sentibert.evaluation.metrics import flatten, headline_metrics
from sentibert.io import atomic_write_json, atomic_write_text
from sentibert.models.encoder import CheckpointError
from sentibert.models.pretraining import mask_tokens, sentiment_lexicon, sentiment_wordpieces
from sentibert.runs import write_predictions
from sentibert.training import precision

log = logging.getLogger(__name__)


# ---- processes and randomness -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def setup_processes(trainer: DictConfig) -> Processes:
    """One process, or DDP when torchrun started several (WORLD_SIZE, RANK, LOCAL_RANK are torchrun's)."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if trainer.strategy not in ("auto", "ddp"):
        raise ValueError(f"trainer.strategy={trainer.strategy!r}: choose auto or ddp")
    if trainer.strategy == "ddp" and world_size == 1:
        raise RuntimeError("trainer.strategy=ddp needs several processes: "
                           "torchrun --nproc_per_node N -m sentibert.commands.train ...")
    device = pick_device(trainer.device)
    if world_size == 1:
        return Processes(0, 1, device)
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = trainer.backend if trainer.backend != "auto" else "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)
    return Processes(dist.get_rank(), world_size, device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every device's generator


def rng_state(mlm_generator: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, gauss),  # plain values: loadable with weights_only
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "mlm": mlm_generator.get_state(),
    }


def set_rng_state(state: dict, mlm_generator: torch.Generator) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    mlm_generator.set_state(state["mlm"])


# ---- model and optimisation -------------------------------------------------------------------------------------
def build_model(cfg: DictConfig):
    """The configured model; with `init_from`, its weights (and encoder) come from that save_pretrained dir."""
    if not cfg.init_from:
        return instantiate(cfg.model)
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("_target_", "encoder")}  # the checkpoint has its encoder
    log.info("initialising from %s", cfg.init_from)
    return get_class(cfg.model._target_).from_pretrained(cfg.init_from, **kwargs)


def build_optimizer(model: torch.nn.Module, trainer: DictConfig, total_steps: int):
    """AdamW with weight decay on weight matrices only (not on biases or LayerNorm), linear warm-up then decay."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)  # biases and LayerNorm weights are 1-d
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": trainer.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=trainer.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(trainer.warmup_ratio * total_steps), total_steps)
    return optimizer, scheduler


# ---- checkpoints ------------------------------------------------------------------------------------------------
class Checkpoints:
    """run_dir/checkpoints/<name>/ written whole under a temporary name, renamed, then named in `latest` (all atomic
    steps), so a crash at any point leaves the previous checkpoint usable. Only the latest is kept.

    A checkpoint: model.safetensors, state.pt (optimizer, scheduler, sampler, progress; rank 0), rng-<rank>.pt
    (each process's generators: under DDP each rank draws its own dropout masks) and config.json (`fingerprint`)."""

    def __init__(self, run_dir: Path, procs: Processes):
        self.root, self.procs = run_dir / "checkpoints", procs

    def latest(self) -> Path | None:
        """The checkpoint `latest` names, None when there is none; a CheckpointError when it names nothing there."""
        pointer = self.root / "latest"
        if not pointer.is_file():
            return None
        name = pointer.read_text(encoding="utf-8", errors="replace").strip()
        path = self.root / name
        if not name or "/" in name or not path.is_dir():
            raise CheckpointError(f"{pointer} names checkpoint {name!r}, but {path} is not there: restore that "
                                  f"directory, or delete {self.root} to train this run from the start")
        return path

    def save(self, name: str, model, state: dict, rng: dict, config: dict) -> None:
        """Write checkpoint `name`; on an OSError (a full disk) the partial one is removed and a CheckpointSaveError
        says so: the previous checkpoint, and `latest` naming it, are left as they were."""
        try:
            self._save(name, model, state, rng, config)
        except OSError as err:
            shutil.rmtree(self.root / f".{name}.tmp", ignore_errors=True)  # free what the partial checkpoint took
            pointer = self.root / "latest"
            previous = pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None
            if previous != name:  # renamed into place, but `latest` could not be written
                shutil.rmtree(self.root / name, ignore_errors=True)
            reason = "the disk is full" if err.errno == errno.ENOSPC else err.strerror or str(err)
            kept = (f"the previous checkpoint {self.root / previous} is intact (resume=true continues from it)"
                    if previous and (self.root / previous).is_dir() else "there is no earlier checkpoint")
            raise CheckpointSaveError(f"cannot write checkpoint {name} in {self.root}: {reason}; {kept}. "
                                      "Free some space (or fix the directory) and resume") from err

    def _save(self, name: str, model, state: dict, rng: dict, config: dict) -> None:
        tmp = self.root / f".{name}.tmp"
        if self.procs.main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.procs.barrier()
        torch.save(rng, tmp / f"rng-{self.procs.rank}.pt")
        if self.procs.main:
            save_model(model, str(tmp / "model.safetensors"))
            torch.save(state, tmp / "state.pt")
            atomic_write_json(tmp / FINGERPRINT_FILE, config)
        self.procs.barrier()
        if self.procs.main:
            shutil.rmtree(self.root / name, ignore_errors=True)  # left by a crash before `latest` named it
            os.replace(tmp, self.root / name)
            atomic_write_text(self.root / "latest", name)
            for old in self.root.iterdir():
                if old.is_dir() and old.name != name:
                    shutil.rmtree(old, ignore_errors=True)

    def load(self, path: Path, model) -> tuple[dict, dict]:
        """Weights into `model`; -> (state, this rank's RNG state), read without unpickling code."""
        rng_file = path / f"rng-{self.procs.rank}.pt"
        if not rng_file.is_file():
            raise FileNotFoundError(f"{rng_file} missing: resume with as many processes as the run had")
        weights = path / "model.safetensors"
        try:
            load_model(model, weights, device=str(self.procs.device))
        except SafetensorError as err:  # cut short, or overwritten
            raise damaged_checkpoint(weights, err) from None
        return _load_state(path / "state.pt", map_location="cpu"), _load_state(rng_file)


class CheckpointSaveError(OSError):
    """A checkpoint that could not be written (a full disk); the message says the previous one is intact."""


def damaged_checkpoint(file: Path, err: Exception) -> CheckpointError:
    """run_dir/checkpoints/<name>/<file> is unreadable: name it, and what to do."""
    reason = str(err).splitlines()[0].partition(". ")[0] if str(err) else type(err).__name__  # torch's: 5 sentences
    return CheckpointError(f"{file}: damaged or truncated ({reason}); restore the checkpoint, or delete "
                           f"{file.parents[1]} to train this run from the start")


def _load_state(file: Path, **kwargs):
    """torch.load without unpickling code; a CheckpointError naming `file` when it is damaged or truncated."""
    try:
        return torch.load(file, weights_only=True, **kwargs)
    except (FileNotFoundError, PermissionError):  # they name the file already
        raise
    # a cut zip, a bad pickle; torch reads a small cut file as an OSError (EINVAL)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as err:
        raise damaged_checkpoint(file, err) from None


# ---- resuming with the same config ------------------------------------------------------------------------------
FINGERPRINT_FILE = "config.json"
# Keys that do not change what a run computes: its name, where it logs, how often it checkpoints, where it runs.
RESUME_EXEMPT = ("name", "resume", "resume_allow_changes", "logger", "data.root", "data.eval_batch_size",
                 "trainer.checkpoint_every_n_steps", "trainer.log_every_n_steps", "trainer.stop_after_steps",
                 "trainer.device", "trainer.strategy", "trainer.backend")


def fingerprint(cfg: DictConfig) -> dict:
    """The resolved config as flat `a.b: value` pairs, without RESUME_EXEMPT keys (a checkpoint stores it)."""
    def flat(node, prefix: str = "") -> dict:
        if not isinstance(node, dict):
            return {prefix[:-1]: node}
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}{key}.").items()}

    resolved = flat(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    return {k: v for k, v in resolved.items() if not any(k == e or k.startswith(e + ".") for e in RESUME_EXEMPT)}


def check_resume(cfg: DictConfig, checkpoint: Path) -> list[dict]:
    """Refuse to resume `checkpoint` with a config that changes the result, naming every changed key; keys in
    `resume_allow_changes` may change (e.g. trainer.max_epochs, to extend a finished run). -> the allowed changes."""
    path = checkpoint / FINGERPRINT_FILE
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
    else:  # written before checkpoints carried their config: the run's config.yaml is the record
        log.warning("%s has no %s: comparing with the run's config.yaml", checkpoint, FINGERPRINT_FILE)
        saved = fingerprint(OmegaConf.load(checkpoint.parents[1] / "config.yaml"))
    current = fingerprint(cfg)
    changed = [{"key": k, "from": saved.get(k), "to": current.get(k)} for k in sorted(saved.keys() | current.keys())
               if saved.get(k) != current.get(k)]
    refused = [c for c in changed if c["key"] not in cfg.resume_allow_changes]
    if refused:
        listed = "; ".join(f"{c['key']}: {c['from']!r} -> {c['to']!r}" for c in refused)
        raise ValueError(f"resume=true with a config that differs from the checkpoint's ({checkpoint}): {listed}. "
                         f"Use a new run directory, or allow a change explicitly: "
                         f"resume_allow_changes=[{','.join(c['key'] for c in refused)}]")
    for change in changed:
        log.warning("resuming with %s changed: %r -> %r (resume_allow_changes)", change["key"], change["from"],
                    change["to"])
    return changed


# ---- loggers ----------------------------------------------------------------------------------------------------
class Logger:
    """No logger (logger=none, and every rank but 0)."""

    def log(self, metrics: dict, step: int) -> None:
        pass

    def finish(self) -> None:
        pass


class CSVLogger(Logger):
    """`step,key,value` rows appended to run_dir/log.csv (long format: keys differ between rows)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "log.csv"
        if not self.path.exists():
            self.path.write_text("step,key,value\n")

    def log(self, metrics: dict, step: int) -> None:
        with self.path.open("a") as f:
            f.writelines(f"{step},{k},{v}\n" for k, v in metrics.items() if v is not None)


class WandbLogger(Logger):
    def __init__(self, cfg: DictConfig, run_dir: Path):
        import wandb

        if cfg.logger.mode != "online":
            # wandb builds its own telemetry from the process-wide settings, not from init's mode=, and would post it
            # to W&B's servers at exit (wandb 0.31, offline included): make the process-wide mode this one too.
            wandb.setup(settings=wandb.Settings(mode=cfg.logger.mode))
        # The run id follows from the run directory, so a resumed run continues the same wandb run.
        run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(project=cfg.logger.project, entity=cfg.logger.entity, mode=cfg.logger.mode,
                              dir=run_dir, name=cfg.name, tags=list(cfg.logger.tags), id=run_id, resume="allow",
                              config=OmegaConf.to_container(cfg, resolve=True))

    def log(self, metrics: dict, step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self) -> None:
        self.run.finish()


def make_logger(cfg: DictConfig, run_dir: Path, procs: Processes) -> Logger:
    kinds = {"none": lambda: Logger(), "csv": lambda: CSVLogger(run_dir), "wandb": lambda: WandbLogger(cfg, run_dir)}
    if cfg.logger.kind not in kinds:
        raise ValueError(f"logger.kind={cfg.logger.kind!r}: choose from {', '.join(kinds)}")
    return kinds[cfg.logger.kind]() if procs.main else Logger()


# ---- training ---------------------------------------------------------------------------------------------------
def train(cfg: DictConfig, run_dir: Path) -> dict | None:
    """Train, select on dev, test once; -> the contents of metrics.json (None if stopped by stop_after_steps)."""
    num_classes = task_classes(cfg.data)
    if cfg.model.num_classes != num_classes:
        raise ValueError(f"model.num_classes={cfg.model.num_classes} but {cfg.data.dataset}"
                         f"{' (label_view=' + cfg.data.label_view + ')' if cfg.data.label_view else ''} "
                         f"has {num_classes} classes")
    reported = headline_metrics(bool(dataset_info(cfg.data.dataset).text_columns), num_classes)
    if cfg.metric not in reported:
        raise ValueError(f"metric={cfg.metric!r} is not reported for {cfg.data.dataset} with {num_classes} classes: "
                         f"choose from {', '.join(reported)}")
    precision.check(cfg.trainer.precision)
    if (cfg.trainer.mlm_probability > 0) != cfg.model.mlm:
        raise ValueError("masked-LM pre-training needs both model.mlm=true and trainer.mlm_probability > 0")
    procs = setup_processes(cfg.trainer)
    if procs.world_size > 1:  # every rank writes where rank 0 does (hydra's timestamps may differ by a second)
        shared = [str(run_dir)]
        dist.broadcast_object_list(shared, src=0)
        run_dir = Path(shared[0])
    checkpoints = Checkpoints(run_dir, procs)
    resume_from = checkpoints.latest() if cfg.resume else None
    changes = check_resume(cfg, resume_from) if resume_from else []  # before anything is written or loaded
    if procs.main:
        log.info("run directory: %s", run_dir)
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    trainer, data = cfg.trainer, cfg.data

    seed_everything(cfg.seed)  # the same on every rank: identical initial weights
    model = build_model(cfg).to(procs.device)
    splits = load_splits(data, ("train", "dev", "test") if cfg.test else ("train", "dev"))
    train_trees = [relabel(t, data.label_view) for t in splits["train"]] if data.label_view else splits["train"]
    train_set = TreeDataset(train_trees, model.tokenizer, model.max_length, name="train")
    dev = first_batches(splits["dev"], data.eval_batch_size, trainer.limit_eval_batches)
    lexicon = sentiment_lexicon(splits["train"]) if trainer.mlm_probability > 0 else frozenset()
    sampler = BucketBatchSampler(train_set.lengths, data.batch_size, seed=cfg.seed, bucket_batches=data.bucket_batches,
                                 num_replicas=procs.world_size, rank=procs.rank)
    steps_per_epoch = min(len(sampler.batches(0)), trainer.limit_train_batches or sys.maxsize)
    optimizer, scheduler = build_optimizer(model, trainer, steps_per_epoch * trainer.max_epochs)
    scaler = precision.grad_scaler(trainer.precision, procs.device)
    mlm_generator = torch.Generator()
    seed_everything(cfg.seed + procs.rank)  # dropout and masking differ between ranks
    mlm_generator.manual_seed(cfg.seed + procs.rank)
    progress = {"step": 0, "dev": [], "best": None}  # best: index into dev, the per-epoch dev metrics

    if resume_from is not None:
        state, rng = checkpoints.load(resume_from, model)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        if "scaler" in state:  # checkpoints from before mixed precision have none (and were float32)
            scaler.load_state_dict(state["scaler"])
        progress = state["progress"]
        progress["config_changes"] = progress.get("config_changes", []) + [
            {**change, "step": progress["step"]} for change in changes]
        set_rng_state(rng, mlm_generator)  # last: nothing may draw between here and the next step
        log.info("resumed from %s (epoch %d, step %d)", resume_from, sampler.epoch + 1, progress["step"])
    elif cfg.resume:
        log.info("resume=true but %s has no checkpoint: starting afresh", run_dir)

    def save_checkpoint() -> None:
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "sampler": sampler.state_dict(), "scaler": scaler.state_dict(), "progress": progress}
        checkpoints.save(f"epoch{sampler.epoch}-step{progress['step']}", model, state, rng_state(mlm_generator),
                         fingerprint(cfg))

    # Ablations leave some layers unused, which DDP must be told about.
    net = DistributedDataParallel(model, find_unused_parameters=True) if procs.world_size > 1 else model
    if trainer.compile:  # shapes vary from batch to batch (dynamic padding): compile for dynamic shapes
        net = torch.compile(net, dynamic=True)
    logger = make_logger(cfg, run_dir, procs)
    best_dir = run_dir / "best_model"
    while sampler.epoch < trainer.max_epochs:
        epoch = sampler.epoch
        net.train()
        bar = tqdm(total=steps_per_epoch, initial=sampler.start_batch, desc=f"epoch {epoch + 1}/{trainer.max_epochs}",
                   disable=not procs.main, dynamic_ncols=True)
        for indices in islice(sampler, steps_per_epoch - sampler.start_batch):
            batch = {k: v.to(procs.device) for k, v in train_set.collate([train_set[i] for i in indices]).items()}
            if trainer.mlm_probability > 0:  # pre-training: masked LM on top of the phrase labels
                batch["input_ids"], batch["mlm_labels"] = mask_tokens(
                    batch["input_ids"], batch["attention_mask"], model.tokenizer, trainer.mlm_probability,
                    mlm_generator, sentiment_wordpieces(batch, train_trees, lexicon),
                    trainer.mlm_sentiment_probability, trainer.mlm_max_predictions)
            with precision.autocast(trainer.precision, procs.device):
                out = net(batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out["loss"]).backward()
            if trainer.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            progress["step"] += 1
            bar.update()
            bar.set_postfix(loss=f"{out['loss'].item():.3f}")
            if progress["step"] % trainer.log_every_n_steps == 0:
                logger.log({"train/loss": out["loss"].item(), "train/lr": scheduler.get_last_lr()[0],
                            **{f"train/{k}": out[k].item() for k in ("phrase_loss", "mlm_loss") if k in out},
                            "epoch": epoch}, progress["step"])
            if trainer.stop_after_steps and progress["step"] >= trainer.stop_after_steps:
                bar.close()
                log.warning("stopping after %d steps (trainer.stop_after_steps)", progress["step"])
                return None
            if trainer.checkpoint_every_n_steps and progress["step"] % trainer.checkpoint_every_n_steps == 0:
                save_checkpoint()
        bar.close()
        sampler.set_epoch(epoch + 1)  # also when limit_train_batches ended the epoch early

        if procs.main:
            metrics, _ = evaluate_model(model, dev, data.eval_batch_size, data.dataset)
            progress["dev"].append({"epoch": epoch + 1, "step": progress["step"], **metrics})
            logger.log(flatten(metrics, "dev/"), progress["step"])
            log.info("epoch %d dev: %s", epoch + 1, summary(metrics))
            scores = [d[cfg.metric] if d[cfg.metric] is not None else -1.0 for d in progress["dev"]]
            if progress["best"] is None or cfg.select == Select.last or scores[-1] > scores[progress["best"]]:
                progress["best"] = len(scores) - 1
                # Files are replaced one by one, atomically; between epochs only the weights change.
                model.save_pretrained(best_dir)
            atomic_write_json(run_dir / "metrics.json", _metrics(cfg, progress))
        save_checkpoint()

    results = None
    if procs.main:
        results = _metrics(cfg, progress)
        if cfg.test:
            test = first_batches(splits["test"], data.eval_batch_size, trainer.limit_eval_batches)
            best = get_class(cfg.model._target_).from_pretrained(best_dir).to(procs.device)
            metrics, predictions = evaluate_model(best, test, data.eval_batch_size, data.dataset)
            write_predictions(run_dir / "test_predictions.jsonl", test, predictions)
            logger.log(flatten(metrics, "test/"), progress["step"])
            log.info("test (%s epoch %d): %s", cfg.select.name, results["best_epoch"], summary(metrics))
            results = _metrics(cfg, progress, metrics)
        atomic_write_json(run_dir / "metrics.json", results)
    logger.finish()
    procs.barrier()
    if procs.world_size > 1:
        dist.destroy_process_group()
    return results


def _metrics(cfg: DictConfig, progress: dict, test: dict | None = None) -> dict:
    best = progress["dev"][progress["best"]]
    out = {"name": cfg.name, "metric": cfg.metric, "select": cfg.select.name, "dev": progress["dev"],
           "best_epoch": best["epoch"], "best_dev": best[cfg.metric]}
    if progress.get("config_changes"):  # allowed on resume: recorded, so the results say how they were made
        out["config_changes"] = progress["config_changes"]
    if test is not None:
        out.update(test=test, reported={cfg.metric: test[cfg.metric]})
    return out
