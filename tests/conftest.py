"""Shared test setup: offline, a private cache, tiny saved models, a stand-in parser, and the optional data mirror."""
import importlib
import os
from pathlib import Path

import pytest
import torch

# Tiny models on a busy 2-core machine run far faster on one thread than on two competing ones.
torch.set_num_threads(1)

# No test may touch the network: make every HF / wandb call fail fast instead of trying.
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false")

MIRROR = Path(os.environ.get("SENTIBERT_MIRROR", Path(__file__).resolve().parents[2] / "shared" / "data"))
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tiny encoders and parse caches go to a per-session directory, never the user's."""
    old = os.environ.get("SENTIBERT_CACHE")
    os.environ["SENTIBERT_CACHE"] = str(tmp_path_factory.mktemp("sentibert-cache"))
    yield Path(os.environ["SENTIBERT_CACHE"])
    if old is None:
        os.environ.pop("SENTIBERT_CACHE", None)
    else:
        os.environ["SENTIBERT_CACHE"] = old


@pytest.fixture
def one_thread():
    """One intra-op thread for each test (an earlier test or command may have changed it): on a small, busy machine,
    threads cost a tiny model far more than they save, and a tiny model's close calls can flip with the thread count.
    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Saves tiny random models, each once a session, and returns a directory: `tiny_model()` is a 5-class SentiBERT
    drawn with seed 0; `tiny_model(MeanPool, seed=1, num_classes=3, trainable_only=True, dtype=torch.float16)` passes
    the rest to the class and to save_pretrained. Tests share the directories: one that changes a file copies first."""
    from sentibert.models.model import SentiBERT  # after the offline settings above

    saved = {}

    def save(cls=SentiBERT, seed=0, trainable_only=False, dtype=None, **kwargs) -> Path:
        key = (cls.__name__, seed, trainable_only, dtype, *sorted(kwargs.items()))
        if key not in saved:
            torch.manual_seed(seed)
            saved[key] = cls("tiny", **kwargs).save_pretrained(tmp_path_factory.mktemp(cls.__name__.lower()),
                                                               trainable_only=trainable_only, dtype=dtype)
        return saved[key]

    return save


@pytest.fixture(scope="session")
def checkpoint(tiny_model) -> Path:
    """The tests' usual model: a tiny random 5-class SentiBERT, seed 0."""
    return tiny_model()


@pytest.fixture
def no_full_error(monkeypatch):
    """Errors as a user sees them, one line, whatever the shell running the tests set for debugging."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.delenv("SENTIBERT_DEBUG", raising=False)


@pytest.fixture
def fake_parser(monkeypatch):
    """Every load_parser gives the one RightBranchingParser returned here: no test loads a parsing model unasked."""
    from fakes import LOAD_PARSER, RightBranchingParser

    parser = RightBranchingParser()
    # Every module imported before any patch: one first imported while parsing.parse.load_parser is the fake would
    # bind the fake for good (`from ... import load_parser`), and later tests would parse with it.
    for module in [importlib.import_module(name) for name in LOAD_PARSER]:
        monkeypatch.setattr(module, "load_parser", parser.load)
    return parser


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local data mirror (../shared/data); tests that need it are skipped where it is absent."""
    if not (MIRROR / "sst" / "trees" / "train.txt").exists():
        pytest.skip(f"data mirror not found at {MIRROR}")
    return MIRROR
