"""The Hydra config tree: every experiment, model and sweep composes; typos are rejected by the schemas."""
import dataclasses
import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class
from omegaconf import OmegaConf

from sentibert.commands.train import main
from sentibert.config import (CONF_DIR, SAMPLE_DATA_DIR, BenchConfig, ConfigError, DataConfig, EncoderConfig,
                              EvaluateConfig, LoggerConfig, ModelConfig, SentiBERTConfig, TrainConfig, TrainerConfig,
                              validate)
from sentibert.data.datasets import dataset_info
from sentibert.evaluation.metrics import HEADLINE_METRICS
from sentibert.models.model import SentiBERT, TreeLSTM, TreeSentimentModel
from sentibert.training.processes import setup_processes

CONF = Path(CONF_DIR)


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_train(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra)


@pytest.mark.parametrize("experiment", names("experiment"))
def test_every_experiment_composes(experiment):
    cfg = compose_train(f"experiment={experiment}")
    assert cfg.name == experiment and cfg.metric in HEADLINE_METRICS
    assert cfg.model.encoder == cfg.encoder.name_or_path == "minilm"  # the offline default
    assert cfg.logger._target_ == "sentibert.training.loggers.CSVLogger"  # no network unless asked for: logger=wandb
    if experiment.endswith("pretrain"):
        assert cfg.model.mlm and cfg.trainer.mlm_probability == 0.15


def test_paper_recipe_defaults():
    t = compose_train().trainer
    assert (t.lr, t.max_epochs, t.warmup_ratio, t.grad_clip, t.mlm_probability) == (2e-5, 5, 0.1, 1.0, 0.0)
    assert compose_train().data.batch_size == 32


@pytest.mark.parametrize("model", names("model"))
def test_every_model_composes_into_its_class_signature(model):
    cfg = compose_train(f"model={model}", "encoder=tiny")
    kwargs = {k: v for k, v in cfg.model.items() if k != "_target_"}
    assert kwargs["encoder"] == "tiny"  # interpolated from the encoder group
    inspect.signature(get_class(cfg.model._target_)).bind(**kwargs)  # raises on a kwarg the class lacks


@pytest.mark.parametrize("schema, model_class", [(ModelConfig, TreeSentimentModel), (SentiBERTConfig, SentiBERT),
                                                 (ModelConfig, TreeLSTM)])
def test_model_defaults_are_the_classes_own(schema, model_class):
    """One set of model defaults: the schema's are the constructor's (encoder and max_length come from the encoder)."""
    parameters = inspect.signature(model_class).parameters
    for f in dataclasses.fields(schema):
        if f.name not in ("_target_", "encoder", "max_length"):
            assert f.default == parameters[f.name].default, f.name


# The schema of a group's files that name none (conf/README.md: every default is written once, in the schema).
GROUP_SCHEMAS = {"trainer": TrainerConfig, "data": DataConfig, "encoder": EncoderConfig, "model": ModelConfig,
                 "logger": LoggerConfig}
COMMAND_SCHEMAS = {"train": TrainConfig, "evaluate": EvaluateConfig, "bench": BenchConfig}


def defaults_under(group: str, name: str):
    """What conf/<group>/<name>.yaml builds on: its schema, then the files its defaults list names."""
    base = OmegaConf.structured(GROUP_SCHEMAS[group])
    for parent in OmegaConf.load(CONF / group / f"{name}.yaml").get("defaults", []):
        if parent.startswith("schema_"):
            base = OmegaConf.structured(ConfigStore.instance().load(f"{group}/{parent}.yaml").node)
        elif parent != "_self_":
            parent_file = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{parent}.yaml"))
            parent_file.pop("defaults", None)
            base = OmegaConf.merge(defaults_under(group, parent), parent_file)
    return base


@pytest.mark.parametrize("group, name", [(group, name) for group in GROUP_SCHEMAS for name in names(group)]
                         + [("", command) for command in COMMAND_SCHEMAS])
def test_yaml_sets_only_what_differs_from_the_schema(group, name):
    """A file that restated a default would be a second place to change it (a model file names its class)."""
    raw = OmegaConf.load(CONF / group / f"{name}.yaml")
    base = defaults_under(group, name) if group else OmegaConf.structured(COMMAND_SCHEMAS[name])
    restated = [key for key in raw if key not in ("defaults", "hydra", "_target_")  # _target_: names the class
                and OmegaConf.to_container(base, resolve=False).get(key, "<none>") == OmegaConf.to_container(
                    raw, resolve=False)[key]]
    assert not restated, f"{group}/{name}.yaml restates its schema's defaults"


@pytest.mark.parametrize("encoder", names("encoder"))
def test_encoders(encoder):
    cfg = compose_train(f"encoder={encoder}")
    assert cfg.encoder.name_or_path and cfg.encoder.max_length > 0


@pytest.mark.parametrize("data", [name for name in names("data") if name != "labelled"])  # test_own_data
def test_data(data):
    cfg = compose_train(f"data={data}")
    info = dataset_info(cfg.data.dataset)  # a dataset `sentibert data prepare` knows
    # datasets without a dev split hold out a fixed 10% of train
    assert cfg.data.dev_from_train == (0.0 if "dev" in info.files else 0.1)


@pytest.mark.parametrize("sweep", names("sweep"))
def test_every_sweep_composes_into_a_multirun(sweep):
    cfg = compose_train("experiment=sst_phrase", f"sweep={sweep}", hydra=True)
    assert cfg.hydra.mode.name == "MULTIRUN"
    (key, values), = cfg.hydra.sweeper.params.items()
    for value in values.split(","):  # each job of the sweep composes too
        job = compose_train("experiment=sst_phrase", f"{key}={value}", hydra=True)
        assert job.hydra.runtime.choices.get(key, str(OmegaConf.select(job, key))) == value


def test_ablation_sweep_covers_every_model():
    # LoRA is a way to fine-tune (for a small bundled model), not an ablation of the paper's model.
    params = compose_train("sweep=ablation", hydra=True).hydra.sweeper.params
    assert sorted(params.model.split(",")) == [m for m in names("model") if m != "sentibert_lora"]


def test_ddp_trainer_refuses_to_run_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="needs several processes: torchrun .* -m sentibert.commands.train"):
        setup_processes(compose_train("trainer=ddp").trainer)


@pytest.mark.parametrize("typo, key", [("trainer.max_epoch=3", "max_epoch"), ("seeed=1", "seeed"),
                                       ("model.attend_token=false", "attend_token"), ("data.batchsize=8", "batchsize")])
def test_typos_are_rejected_naming_the_key(typo, key):
    with pytest.raises(ConfigCompositionException) as err:
        compose_train(typo)
    assert key in str(err.value) and key in str(err.value.__cause__)


def test_num_workers_default_to_the_main_process_and_are_never_negative():
    assert compose_train().trainer.num_workers == 0
    validate(compose_train("trainer.num_workers=4"))
    with pytest.raises(ConfigError, match=r"^trainer.num_workers=-1 is out of range: use a value >= 0$"):
        validate(compose_train("trainer.num_workers=-1"))


def test_wrong_types_are_rejected():
    with pytest.raises(ConfigCompositionException, match="max_epochs"):
        compose_train("trainer.max_epochs=five")


def test_paths_place_the_data_and_the_runs(monkeypatch):
    monkeypatch.delenv("SENTIBERT_DATA_DIR", raising=False)
    cfg = compose_train("name=x", hydra=True)
    assert cfg.data.root == "data" and cfg.hydra.run.dir.startswith("runs/x/")
    monkeypatch.setenv("SENTIBERT_DATA_DIR", "/prepared")
    cfg = compose_train("name=x", "paths.runs_dir=/scratch/runs", hydra=True)
    assert cfg.data.root == "/prepared" and cfg.hydra.run.dir.startswith("/scratch/runs/x/")
    assert cfg.hydra.sweep.dir.startswith("/scratch/runs/x/multirun_")
    assert compose_train("data=fixture", "paths.data_dir=/elsewhere").data.root == SAMPLE_DATA_DIR  # from anywhere
    assert (Path(SAMPLE_DATA_DIR) / "sst" / "train.txt").is_file()


def test_cli_reports_a_typo(capsys):
    with pytest.raises(SystemExit):
        main(["trainer.max_epoch=3"])
    assert "max_epoch" in capsys.readouterr().err


def test_evaluate_config_composes():
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("evaluate", overrides=["checkpoint=some/dir", "data=sst_paper", "split=dev"])
        with pytest.raises(ConfigCompositionException):
            compose("evaluate", overrides=["checkpoint=x", "splt=dev"])
    assert (cfg.checkpoint, cfg.data.dataset, cfg.split) == ("some/dir", "sst-paper", "dev")


def test_conf_readme_lists_every_file_of_every_group():
    import re

    readme = (Path(CONF_DIR) / "README.md").read_text(encoding="utf-8")
    # `emoint_{joy,anger}` names emoint_joy and emoint_anger
    readme = re.sub(r"(\w*)\{([\w,]+)\}", lambda m: " ".join(m[1] + x for x in m[2].split(",")), readme)
    unlisted = []
    for group in sorted(p for p in Path(CONF_DIR).iterdir() if p.is_dir()):
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{group.name}/` |")), "")
        unlisted += [f"{group.name}/{f.stem}" for f in sorted(group.glob("*.yaml"))
                     if not re.search(rf"\b{re.escape(f.stem)}\b", row.split("|")[2] if row else "")]
    assert not unlisted
