"""The training library's parts on their own: loggers (built from conf/logger/*.yaml), the optimiser's weight-decay
groups, gradient clipping. No network: wandb runs disabled, or is replaced by a recording stand-in."""
import socket
import sys
import types

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sentibert.config import CONF_DIR
from sentibert import precision
from sentibert.training.loggers import CSVLogger, Logger, WandbLogger, build_logger
from sentibert.training.loop import build_optimizer, optimizer_step


def train_config(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=["encoder=tiny", "data=fixture", *overrides])


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network call: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ---- loggers ------------------------------------------------------------------------------------------------------
def test_csv_logger_appends_rows_in_long_format(tmp_path):
    logger = build_logger(train_config("logger=csv"), tmp_path)
    assert type(logger) is CSVLogger
    logger.log({"train/loss": 0.5, "train/lr": None, "epoch": 0}, step=10)
    build_logger(train_config("logger=csv"), tmp_path).log({"dev/phrase_acc": 0.75}, step=20)  # a resumed run
    assert (tmp_path / "log.csv").read_text() == "step,key,value\n10,train/loss,0.5\n10,epoch,0\n20,dev/phrase_acc,0.75\n"


def test_no_logger_writes_nothing_and_other_ranks_never_log(tmp_path):
    assert type(build_logger(train_config("logger=none"), tmp_path)) is Logger
    assert type(build_logger(train_config("logger=csv"), tmp_path, main_process=False)) is Logger
    assert list(tmp_path.iterdir()) == []


def test_wandb_logger_is_built_from_its_yaml(tmp_path, monkeypatch, no_network):
    calls = []

    class FakeRun:
        def log(self, metrics, step):
            calls.append(("log", metrics, step))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(
        Settings=lambda **kwargs: kwargs, setup=lambda settings: calls.append(("setup", settings)),
        init=lambda **kwargs: calls.append(("init", kwargs)) or FakeRun())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = train_config("logger=wandb", "name=my-run", "logger.tags=[a,b]")
    logger = build_logger(cfg, tmp_path)
    assert type(logger) is WandbLogger
    logger.log({"train/loss": 1.0}, step=3)
    logger.finish()
    (_, settings), (_, init), log, finish = calls
    assert settings == {"mode": "offline"}  # process-wide: no telemetry posted at exit
    assert (init["project"], init["mode"], init["name"], init["tags"], init["dir"]) == (
        "sentibert", "offline", "my-run", ["a", "b"], tmp_path)
    assert init["config"] == OmegaConf.to_container(cfg, resolve=True) and init["resume"] == "allow"
    assert log == ("log", {"train/loss": 1.0}, 3) and finish == ("finish",)
    calls.clear()
    build_logger(cfg, tmp_path)
    assert calls[1][1]["id"] == init["id"]  # the same run directory continues the same wandb run


def test_wandb_logger_disabled_runs_without_network(tmp_path, monkeypatch, no_network):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # conftest's: the logger's own mode must disable the run
    logger = build_logger(train_config("logger=wandb", "logger.mode=disabled"), tmp_path)
    assert isinstance(logger, WandbLogger) and logger.run.disabled
    logger.log({"train/loss": 1.0}, step=1)
    logger.finish()
    assert list(tmp_path.iterdir()) == []  # offline would have written tmp_path/wandb


# ---- optimisation -------------------------------------------------------------------------------------------------
def test_weight_decay_applies_to_weight_matrices_only():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2))
    model[2].weight.requires_grad_(False)  # frozen: not optimised at all
    trainer = train_config("trainer.weight_decay=0.3").trainer
    optimizer, _ = build_optimizer(model, trainer, total_steps=10)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.3 and no_decay["weight_decay"] == 0.0
    assert [id(p) for p in decay["params"]] == [id(model[0].weight)]
    assert {id(p) for p in no_decay["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias),
                                                   id(model[2].bias)}


@pytest.mark.parametrize("grad_clip", [0.0, 1.0])
def test_gradient_clipping_bounds_the_update(grad_clip):
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # the update is the (clipped) gradient itself
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    loss = 1000 * model(torch.ones(4, 8)).sum()  # a gradient norm far above 1
    optimizer_step(loss, model, optimizer, scheduler, precision.grad_scaler("32", torch.device("cpu")), grad_clip)
    update = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm().item()
    if grad_clip:
        assert update == pytest.approx(grad_clip, rel=1e-4)
    else:
        assert update > 100
