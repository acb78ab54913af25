"""The commands: one thin module per `sentibert <command>` (sentibert.cli dispatches), each an argparse or Hydra
entry over library calls. No command imports another, and the library imports none of them.

`hydra_command` makes a Hydra app of a library function; `fail` prints the one-line error every command ends with.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.errors import CompactHydraException, InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sentibert.config import CONF_DIR, ConfigError, validate


def add_model_option(ap: argparse.ArgumentParser) -> None:
    """--model (or --checkpoint, its older name): what `sentibert predict` and `sentibert serve` run."""
    from sentibert.bundles import BUNDLES, DEFAULT_MODEL

    ap.add_argument("--model", "--checkpoint", dest="model", default=DEFAULT_MODEL, metavar="NAME|DIR",
                    help=f"a bundled model ({', '.join(BUNDLES)}; default {DEFAULT_MODEL}), a model saved with "
                         "save_pretrained, or a training run directory (its best_model/)")


def add_inference_options(ap: argparse.ArgumentParser, precision: str) -> None:
    """--parser, --no-cache, --device and --precision: what `sentibert predict` and `sentibert serve` both take."""
    ap.add_argument("--parser", default="auto", choices=["auto", "stanza", "bundled"], help="see `sentibert parse`")
    ap.add_argument("--no-cache", action="store_true", help="neither read nor write the parse cache")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--precision", choices=("auto", "32", "bf16"), default=precision,
                    help=f"default {precision}; auto: bf16 where the hardware computes in it natively, else 32 (float32)")


def error_line(command: str, err: BaseException | str) -> str:
    """The one line every command ends a user error with: `sentibert <command>: error: <err>`."""
    return f"sentibert {command}: error: {err}"


DEBUG_ENV = "SENTIBERT_DEBUG"  # =1: errors raise with their traceback, as HYDRA_FULL_ERROR=1 does


def fail(command: str, err: BaseException | str) -> int:
    """`error_line` on stderr; -> the exit status, 1. With SENTIBERT_DEBUG=1 an exception raises instead."""
    if isinstance(err, BaseException) and os.environ.get(DEBUG_ENV) == "1":
        raise err
    print(error_line(command, err), file=sys.stderr)
    return 1


# ---- Hydra commands -------------------------------------------------------------------------------------------


def user_error(err: BaseException) -> BaseException | None:
    """The error to report in one line, or None for a bug (its traceback is shown). Ours: the project's error
    types, any OSError (a missing file, a full disk: the message names the file), and a ValueError or RuntimeError
    raised by our own checks (in a sentibert module). An error inside hydra.utils.instantiate is judged by its cause."""
    from sentibert.data.datasets import DataError
    from sentibert.data.tree import TreeFormatError
    from sentibert.models.checkpoint import CheckpointError
    from sentibert.models.encoder import EncoderNotFound
    from sentibert.parsing.parse import ParserError

    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, (DataError, TreeFormatError, ParserError, CheckpointError, EncoderNotFound, ConfigError,
                        OSError)):
        return err
    if isinstance(err, (ValueError, RuntimeError)):
        tb = err.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        package = str(Path(__file__).parents[1]) + os.sep
        if tb is not None and tb.tb_frame.f_code.co_filename.startswith(package):
            return err
    return None


def _close_progress_bars() -> None:
    """End the progress bars an error left open (mid-epoch), so that the error starts a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    sys.stdout.flush()


class CommandError(CompactHydraException):
    """A user error in one job of a multirun: Hydra names the job, then prints this message (no traceback)."""


class RunDirCheck(Callback):
    """A run directory that cannot be written (read-only, a file in its way) ends the command in one line before
    Hydra writes into it (else Hydra's traceback). conf/{train,evaluate,bench}.yaml name it in hydra.callbacks."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.check(config, "hydra.sweep.dir")

    @staticmethod
    def check(config: DictConfig, key: str) -> None:
        directory = Path(str(OmegaConf.select(config, key)))
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=directory).close()
        except OSError as err:  # exit here: Hydra turns a callback's exception into a warning
            sys.exit(fail(config.hydra.job.name, f"cannot write in {key}={directory} ({err.strerror or err}): "
                                                 "choose another"))


def hydra_command(config_name: str, run: Callable[[DictConfig, Path], Any]) -> Callable[[list[str] | None], int]:
    """`main(argv)` of a Hydra app: compose `conf/<config_name>.yaml` with the overrides in argv, `validate` it, then
    call `run(cfg, run_dir)`; what `run` returns goes back to Hydra (sweepers such as Optuna optimise it).

    A user error (`user_error`: bad data, a damaged checkpoint, a value out of range, a full disk) is printed as one
    line, `sentibert <command>: error: <message>`, on stderr, and the command exits with status 1; in a multirun
    the job fails with that message and Hydra goes on as it does with any failed job. HYDRA_FULL_ERROR=1 or
    SENTIBERT_DEBUG=1 let the error raise with its traceback."""
    @hydra.main(config_path=CONF_DIR, config_name=config_name, version_base="1.3")
    def app(cfg: DictConfig) -> Any:
        try:
            return run(validate(cfg), Path(HydraConfig.get().runtime.output_dir))
        except Exception as err:
            error = user_error(err)
            if error is None or os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get(DEBUG_ENV) == "1":
                raise
            message = error_line(config_name, error)
            if HydraConfig.get().mode == RunMode.MULTIRUN:
                raise CommandError(message) from err
            _close_progress_bars()
            print(message, file=sys.stderr)
            sys.exit(1)

    def main(argv: list[str] | None = None) -> int:
        if argv is None:  # torchrun / python -m: Hydra reads sys.argv as it is
            app()
            return 0
        saved = sys.argv  # `sentibert <command> ...`: Hydra reads sys.argv; give it argv, then put it back
        sys.argv = [sys.argv[0], *argv]
        try:
            app()
        finally:
            sys.argv = saved
        return 0

    return main
