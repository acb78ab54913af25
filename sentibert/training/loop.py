"""A training run (`sentibert train [experiment=NAME] [overrides]`, conf/train.yaml): fit, select, test.

One run:
- trains on every phrase label of the train split (AdamW without decay on biases and LayerNorm, linear warm-up then
  decay, gradient clipping), in length-bucketed, dynamically padded batches (sentibert.data.spans);
- evaluates dev after each epoch and keeps the best epoch by `metric` (run_dir/best_model, a save_pretrained dir),
  or the last one with `select=last` (pre-training, where dev is only logged);
- evaluates test once, at the end, with that model (unless `test=false`: pre-training);
- with `model.mlm=true` (`experiment=sst_phrase_pretrain`), adds the paper's masked LM (sentibert.models.pretraining);
- checkpoints (sentibert.training.checkpoints) every `trainer.checkpoint_every_n_steps` steps and every epoch: weights (safetensors), optimizer,
  scheduler, sampler position and every RNG, so `resume=true` (same run directory) continues bit for bit;
- on SIGTERM or SIGINT, checkpoints the step it has reached and stops (`Interrupted`);
- trains in a run directory only as its one run (`checkpoints.own_run_dir`: a lock file; another run's folder is
  refused unless `resume=true` or `overwrite=true`).

The run directory (hydra.run.dir, runs/<name>/<date>/ by default) holds config.yaml (resolved, paths as written: `config_record`), metrics.json (dev per
epoch, best epoch, test), test_predictions.jsonl (for `sentibert report`), best_model/, checkpoints/ and the logger's
files.

Multi-GPU: `torchrun --nproc_per_node N -m sentibert.commands.train ...` (DDP: nccl on GPUs, gloo on CPUs); rank 0 evaluates
and writes. Training batches come from a DataLoader over the bucket sampler's batches for the epoch
(`trainer.num_workers` processes collate them, into pinned memory on CUDA). Workers run ahead of training, so the
loop, not the loader, advances the sampler's position per batch consumed: a checkpoint resumes exactly there.
"""
from __future__ import annotations

import json
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from sentibert import precision, runs
from sentibert.config import Select
from sentibert.data.datasets import first_batches, is_labelled_text, load_splits, task_classes
from sentibert.data.labels import label_names, relabel
from sentibert.data.spans import BucketBatchSampler, TreeDataset
from sentibert.data.tree import BinaryTree
from sentibert.evaluation.evaluate import evaluate_model, summary
from sentibert.evaluation.metrics import flatten, headline_metrics
from sentibert.io import atomic_write_json, atomic_write_text
from sentibert.models.pretraining import mask_tokens, sentiment_lexicon, sentiment_wordpieces
from sentibert.parsing import parse
from sentibert.training.checkpoints import Checkpoints, check_resume, checkpoint_name, fingerprint, own_run_dir
from sentibert.training.loggers import TEST_PREFIX, Logger, build_logger
from sentibert.training.processes import (Processes, StopSignals, rng_state, seed_everything, set_rng_state,
                                          setup_processes)

log = logging.getLogger(__name__)


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


def optimizer_step(loss: torch.Tensor, model: torch.nn.Module, optimizer, scheduler, scaler, grad_clip: float) -> None:
    """Backward (scaled for float16), clip the global gradient norm to `grad_clip` (0: no clipping), step."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()


def check_config(cfg: DictConfig) -> None:
    """Refuse a config whose parts disagree (classes, metric, precision, pre-training), before anything loads."""
    num_classes = task_classes(cfg.data)
    if cfg.model.num_classes != num_classes:
        raise ValueError(f"model.num_classes={cfg.model.num_classes} but {cfg.data.dataset}"
                         f"{' (label_view=' + cfg.data.label_view + ')' if cfg.data.label_view else ''} "
                         f"has {num_classes} classes")
    reported = headline_metrics(is_labelled_text(cfg.data), num_classes)
    if cfg.metric not in reported:
        raise ValueError(f"metric={cfg.metric!r} is not reported for {cfg.data.dataset} with {num_classes} classes: "
                         f"choose from {', '.join(reported)}")
    precision.check(cfg.trainer.precision)
    if (cfg.trainer.mlm_probability > 0) != cfg.model.mlm:
        raise ValueError("masked-LM pre-training needs both model.mlm=true and trainer.mlm_probability > 0")


# ---- one run's state ----------------------------------------------------------------------------------------------
@dataclass
class TrainingState:
    """Everything a training run holds between steps; `progress` and the optimisation state go into checkpoints."""
    cfg: DictConfig
    run_dir: Path
    procs: Processes
    model: torch.nn.Module
    train_set: TreeDataset
    train_trees: list[BinaryTree]
    dev: list[BinaryTree]
    test: list[BinaryTree] | None
    lexicon: frozenset
    sampler: BucketBatchSampler
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    mlm_generator: torch.Generator
    checkpoints: Checkpoints
    progress: dict = field(default_factory=lambda: {"step": 0, "dev": [], "best": None})  # best: index into dev
    net: torch.nn.Module | None = None  # the model as trained: DDP-wrapped and/or compiled
    logger: Logger = field(default_factory=Logger)
    stop: StopSignals = field(default_factory=StopSignals)  # signals asking training to stop
    saved_step: int | None = None  # the step of the last checkpoint saved

    @property
    def best_dir(self) -> Path:
        return self.run_dir / runs.BEST_MODEL

    def save_checkpoint(self) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "sampler": self.sampler.state_dict(), "scaler": self.scaler.state_dict(), "progress": self.progress}
        self.checkpoints.save(checkpoint_name(self.sampler.epoch, self.progress["step"]), self.model, state,
                              rng_state(self.mlm_generator), fingerprint(self.cfg))
        self.saved_step = self.progress["step"]


class Interrupted(Exception):
    """Training stopped by SIGTERM or SIGINT, with a checkpoint of the step it had reached."""

    def __init__(self, signum: int, step: int, checkpoint: Path):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}, checkpoint {checkpoint}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


def checkpoint_and_stop(run: TrainingState) -> None:
    """A signal asked training to stop: checkpoint this step (unless just done), then raise Interrupted."""
    if run.saved_step != run.progress["step"]:
        run.save_checkpoint()
    raise Interrupted(run.stop.signum or signal.SIGTERM, run.progress["step"], run.checkpoints.latest())


def shared_run_dir(run_dir: Path, procs: Processes) -> Path:
    """Rank 0's run directory on every rank (hydra's timestamps may differ by a second between ranks)."""
    if procs.world_size == 1:
        return run_dir
    shared = [str(run_dir)]
    dist.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def setup(cfg: DictConfig, run_dir: Path, procs: Processes) -> TrainingState:
    """Model, data, sampler and optimiser of a fresh run (seeded alike on every rank, then per rank)."""
    trainer, data = cfg.trainer, cfg.data
    seed_everything(cfg.seed)  # the same on every rank: identical initial weights
    model = build_model(cfg).to(procs.device)
    # Its task's class names, saved with it: every output of the model names them.
    model.label_names = label_names(cfg.model.num_classes, data.dataset, data.label_view, data.get("label_names"))
    splits = load_splits(data, ("train", "dev", "test") if cfg.test else ("train", "dev"), parse.load_parser)
    train_trees = [relabel(t, data.label_view) for t in splits["train"]] if data.label_view else splits["train"]
    train_set = TreeDataset(train_trees, model.tokenizer, model.max_length, name="train")
    sampler = BucketBatchSampler(train_set.lengths, data.batch_size, seed=cfg.seed, bucket_batches=data.bucket_batches,
                                 num_replicas=procs.world_size, rank=procs.rank)
    steps_per_epoch = min(len(sampler.batches(0)), trainer.limit_train_batches or sys.maxsize)
    optimizer, scheduler = build_optimizer(model, trainer, steps_per_epoch * trainer.max_epochs)
    run = TrainingState(
        cfg, run_dir, procs, model, train_set, train_trees,
        dev=first_batches(splits["dev"], data.eval_batch_size, trainer.limit_eval_batches),
        test=first_batches(splits["test"], data.eval_batch_size, trainer.limit_eval_batches) if cfg.test else None,
        lexicon=sentiment_lexicon(splits["train"]) if trainer.mlm_probability > 0 else frozenset(),
        sampler=sampler, steps_per_epoch=steps_per_epoch, optimizer=optimizer, scheduler=scheduler,
        scaler=precision.grad_scaler(trainer.precision, procs.device), mlm_generator=torch.Generator(),
        checkpoints=Checkpoints(run_dir, procs))
    seed_everything(cfg.seed + procs.rank)  # dropout and masking differ between ranks
    run.mlm_generator.manual_seed(cfg.seed + procs.rank)
    return run


def resume(run: TrainingState, checkpoint: Path, changes: list[dict]) -> None:
    """Continue `run` from `checkpoint`: weights, optimiser, scheduler, sampler position, progress and every RNG."""
    state, rng = run.checkpoints.load(checkpoint, run.model)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.sampler.load_state_dict(state["sampler"])
    run.scaler.load_state_dict(state["scaler"])
    run.progress = state["progress"]
    run.progress["config_changes"] = run.progress.get("config_changes", []) + [
        {**change, "step": run.progress["step"]} for change in changes]
    set_rng_state(rng, run.mlm_generator)  # last: nothing may draw between here and the next step
    log.info("resumed from %s (epoch %d, step %d)", checkpoint, run.sampler.epoch + 1, run.progress["step"])


# ---- fit, select, test ------------------------------------------------------------------------------------------
def train_step(run: TrainingState, batch: dict[str, torch.Tensor]) -> dict:
    """One optimisation step on a collated batch of training items; -> the model's outputs (losses)."""
    trainer, model = run.cfg.trainer, run.model
    batch = {k: v.to(run.procs.device, non_blocking=True) for k, v in batch.items()}
    if trainer.mlm_probability > 0:  # pre-training: masked LM on top of the phrase labels
        batch["input_ids"], batch["mlm_labels"] = mask_tokens(
            batch["input_ids"], batch["attention_mask"], model.tokenizer, trainer.mlm_probability, run.mlm_generator,
            sentiment_wordpieces(batch, run.train_trees, run.lexicon), trainer.mlm_sentiment_probability,
            trainer.mlm_max_predictions)
    with precision.autocast(trainer.precision, run.procs.device):
        out = run.net(batch)
    optimizer_step(out["loss"], model, run.optimizer, run.scheduler, run.scaler, trainer.grad_clip)
    return out


def fit_epoch(run: TrainingState) -> bool:
    """Train the rest of the current epoch (all of it, unless resumed mid-epoch), checkpointing every
    `checkpoint_every_n_steps`; -> False when stopped by `trainer.stop_after_steps`."""
    trainer, sampler, progress = run.cfg.trainer, run.sampler, run.progress
    epoch = sampler.epoch
    run.net.train()
    bar = tqdm(total=run.steps_per_epoch, initial=sampler.start_batch, desc=f"epoch {epoch + 1}/{trainer.max_epochs}",
               disable=not run.procs.main, dynamic_ncols=True)
    # The epoch's remaining batches, in the sampler's order. Workers collate ahead of training, so the sampler's
    # position is advanced here, per batch consumed: a checkpoint then resumes exactly where training was.
    remaining = sampler.batches(epoch)[sampler.start_batch:run.steps_per_epoch]
    # Its own generator: the loader draws a worker seed per epoch, which from torch's global one would shift dropout's
    # random stream (collating draws nothing, so any seed will do).
    loader = DataLoader(run.train_set, batch_sampler=remaining, collate_fn=run.train_set.collate,
                        num_workers=trainer.num_workers, pin_memory=run.procs.device.type == "cuda",
                        generator=torch.Generator(), worker_init_fn=StopSignals.ignore_in_worker)
    for batch in loader:
        out = train_step(run, batch)
        sampler.start_batch += 1
        progress["step"] += 1
        bar.update()
        bar.set_postfix(loss=f"{out['loss'].item():.3f}")
        if progress["step"] % trainer.log_every_n_steps == 0:
            run.logger.log({"train/loss": out["loss"].item(), "train/lr": run.scheduler.get_last_lr()[0],
                            **{f"train/{k}": out[k].item() for k in ("phrase_loss", "mlm_loss") if k in out},
                            "epoch": epoch}, progress["step"])
        if trainer.stop_after_steps and progress["step"] >= trainer.stop_after_steps:
            bar.close()
            log.warning("stopping after %d steps (trainer.stop_after_steps)", progress["step"])
            return False
        if trainer.checkpoint_every_n_steps and progress["step"] % trainer.checkpoint_every_n_steps == 0:
            run.save_checkpoint()
        if run.stop.requested(run.procs):
            bar.close()
            checkpoint_and_stop(run)
    bar.close()
    sampler.set_epoch(epoch + 1)  # also when limit_train_batches ended the epoch early
    return True


def select(run: TrainingState) -> None:
    """Evaluate dev after an epoch (rank 0) and keep the model if it is the one `select` picks (best_model/)."""
    cfg, progress = run.cfg, run.progress
    metrics, _ = evaluate_model(run.model, run.dev, cfg.data.eval_batch_size, is_labelled_text(cfg.data))
    epoch = run.sampler.epoch  # already advanced: the epoch just finished, counted from 1
    progress["dev"].append({"epoch": epoch, "step": progress["step"], **metrics})
    run.logger.log(flatten(metrics, "dev/"), progress["step"])
    log.info("epoch %d dev: %s", epoch, summary(metrics))
    scores = [d[cfg.metric] if d[cfg.metric] is not None else -1.0 for d in progress["dev"]]
    if progress["best"] is None or cfg.select == Select.last or scores[-1] > scores[progress["best"]]:
        progress["best"] = len(scores) - 1
        # Files are replaced one by one, atomically; between epochs only the weights change.
        run.model.save_pretrained(run.best_dir)
    atomic_write_json(run.run_dir / runs.METRICS_FILE, run_metrics(cfg, progress))


def test(run: TrainingState) -> dict:
    """Evaluate the selected model (best_model/) on test once (rank 0); writes test_predictions.jsonl."""
    cfg = run.cfg
    best = get_class(cfg.model._target_).from_pretrained(run.best_dir).to(run.procs.device)
    metrics, predictions = evaluate_model(best, run.test, cfg.data.eval_batch_size, is_labelled_text(cfg.data))
    runs.write_predictions(run.run_dir / runs.PREDICTIONS_FILE, run.test, predictions, best.label_names,
                           cfg.data.label_view)
    run.logger.log(flatten(metrics, TEST_PREFIX), run.progress["step"])
    return metrics


def run_metrics(cfg: DictConfig, progress: dict, test: dict | None = None) -> dict:
    """The contents of metrics.json: dev per epoch, the selected epoch, and test once it is known."""
    best = progress["dev"][progress["best"]]
    out = {"name": cfg.name, "metric": cfg.metric, "select": cfg.select.name, "dev": progress["dev"],
           "best_epoch": best["epoch"], "best_dev": best[cfg.metric]}
    if progress.get("config_changes"):  # allowed on resume: recorded, so the results say how they were made
        out["config_changes"] = progress["config_changes"]
    if test is not None:
        out.update(test=test, reported={cfg.metric: test[cfg.metric]})
    return out


# ---- a run --------------------------------------------------------------------------------------------------------
def config_record(cfg: DictConfig) -> str:
    """config.yaml: the resolved config, but its paths (`paths`, `data.root`) as the config or the user wrote them
    (`${oc.env:SENTIBERT_DATA_DIR,data}`, `${sample_data:}`), not this machine's absolute folders."""
    record = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    record["paths"] = OmegaConf.to_container(cfg.paths, resolve=False)
    record["data"]["root"] = OmegaConf.to_container(cfg.data, resolve=False)["root"]
    return OmegaConf.to_yaml(record)


def train(cfg: DictConfig, run_dir: Path) -> dict | None:
    """Train, select on dev, test once; -> the contents of metrics.json (None if stopped by stop_after_steps).
    SIGTERM or SIGINT stop it after the current step, with a checkpoint: Interrupted."""
    check_config(cfg)
    procs = setup_processes(cfg.trainer)
    run_dir = shared_run_dir(run_dir, procs)
    with own_run_dir(cfg, run_dir, procs), StopSignals() as signals:
        results = fit_and_test(cfg, run_dir, procs, signals)
    if procs.world_size > 1:
        dist.destroy_process_group()
    return results


def finished_results(cfg: DictConfig, run_dir: Path, changes: list[dict]) -> dict | None:
    """A resumed run that had already trained every epoch, unchanged, and tested: its metrics.json (else None).
    Read before anything loads: its dev lists each epoch trained, and test comes once training has ended."""
    path = run_dir / runs.METRICS_FILE
    if changes or not path.is_file():
        return None
    results = json.loads(path.read_text(encoding="utf-8"))
    trained = bool(results.get("dev")) and results["dev"][-1]["epoch"] >= cfg.trainer.max_epochs
    return results if trained and ("test" in results or not cfg.test) else None


def fit_and_test(cfg: DictConfig, run_dir: Path, procs: Processes, signals: StopSignals) -> dict | None:
    """`train`, in a run directory that it holds."""
    resume_from = Checkpoints(run_dir, procs).latest() if cfg.resume else None
    changes = check_resume(cfg, resume_from) if resume_from else []  # before anything is written or loaded
    if procs.main:
        log.info("run directory: %s", run_dir)
        atomic_write_text(run_dir / runs.CONFIG_FILE, config_record(cfg))
    if resume_from is not None and (finished := finished_results(cfg, run_dir, changes)):
        log.info("%s is finished: its %s stands (test is read once)", run_dir, runs.METRICS_FILE)
        return finished
    run = setup(cfg, run_dir, procs)
    run.stop = signals
    if resume_from is not None:
        resume(run, resume_from, changes)
    elif cfg.resume:
        log.info("resume=true but %s has no checkpoint: starting afresh", run_dir)

    run.net = (DistributedDataParallel(run.model, find_unused_parameters=run.model.unused_parameters)
               if procs.world_size > 1 else run.model)
    if cfg.trainer.compile:  # shapes vary from batch to batch (dynamic padding): compile for dynamic shapes
        run.net = torch.compile(run.net, dynamic=True)
    run.logger = build_logger(cfg, run_dir, procs.main)
    run.logger.rewind(run.progress["step"])  # the steps after the checkpoint are logged again
    while run.sampler.epoch < cfg.trainer.max_epochs:
        if not fit_epoch(run):
            return None
        if procs.main:
            select(run)
        run.save_checkpoint()
        if run.stop.requested(procs):
            checkpoint_and_stop(run)

    results = None
    if procs.main:
        results = run_metrics(cfg, run.progress)
        if cfg.test:
            metrics = test(run)
            log.info("test (%s epoch %d): %s", cfg.select.name, results["best_epoch"], summary(metrics))
            results = run_metrics(cfg, run.progress, metrics)
        atomic_write_json(run_dir / runs.METRICS_FILE, results)
    run.logger.finish()
    procs.barrier()
    return results
