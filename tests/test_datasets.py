import hashlib
import subprocess
import urllib.error
import zipfile
from pathlib import Path

import pytest

from sentibert.commands import data as data_command
from sentibert.data import datasets
from sentibert.data.datasets import DataError, Dataset, TreeFile, load_split, prepare
from sentibert.data.labels import sst2_trees, to_sst2, to_sst3
from sentibert.data.tree import BinaryTree

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "sst_tiny"
MIRROR = Path(__file__).parents[2] / "shared" / "data"
SPLITS = ("train", "dev", "test")


@pytest.fixture
def tiny(monkeypatch):
    """A dataset 'sst-tiny' in the official SST layout whose checksums are those of the fixture files."""
    files = {
        split: TreeFile((f"trees/{split}.txt", f"{split}.txt"), hashlib.sha256((TINY / f"{split}.txt").read_bytes()).hexdigest())
        for split in SPLITS
    }
    monkeypatch.setitem(datasets.DATASETS, "sst-tiny", Dataset("https://example.invalid/tiny.zip", files))
    return "sst-tiny"


def official_zip(path: Path, source_dir: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for split in SPLITS:
            archive.write(source_dir / f"{split}.txt", f"trees/{split}.txt")
    return path


# ---- label views -------------------------------------------------------------------------------------
def test_label_views():
    assert [to_sst3(label) for label in range(5)] == [0, 0, 1, 2, 2]
    assert [to_sst2(label) for label in range(5)] == [0, 0, None, 1, 1]
    with pytest.raises(ValueError, match="0-4"):
        to_sst3(-1)
    trees = [BinaryTree.from_ptb(t) for t in ("(2 (2 a) (2 b))", "(4 good)", "(1 (1 bad) (2 day))")]
    assert [t.root_label for t in sst2_trees(trees)] == [4, 1]


# ---- prepare -----------------------------------------------------------------------------------------
def test_prepare_from_dir_and_zip(tiny, tmp_path):
    prepare(tiny, str(TINY), tmp_path / "from_dir")
    prepare(tiny, str(official_zip(tmp_path / "tiny.zip", TINY)), tmp_path / "from_zip")
    for out in ("from_dir", "from_zip"):
        for split in SPLITS:
            assert (tmp_path / out / tiny / f"{split}.txt").read_bytes() == (TINY / f"{split}.txt").read_bytes()
    assert [t.root_label for t in load_split(tiny, "train", tmp_path / "from_zip")] == [3, 1, 2]


def test_prepare_twice_does_nothing(tiny, tmp_path, capsys):
    prepare(tiny, str(TINY), tmp_path)
    written = {p: p.stat().st_mtime_ns for p in (tmp_path / tiny).iterdir()}
    prepare(tiny, "/nonexistent/source", tmp_path)  # the source is not even opened
    assert "already prepared" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / tiny).iterdir()} == written


def test_prepare_rejects_a_wrong_checksum_and_writes_nothing(tiny, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for split in SPLITS:
        (source / f"{split}.txt").write_bytes((TINY / f"{split}.txt").read_bytes())
    (source / "test.txt").write_text("(2 (2 tampered) (2 file))\n")
    with pytest.raises(DataError, match=r"test\.txt has SHA-256 .* expected"):
        prepare(tiny, str(source), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_prepare_names_a_missing_split(tiny, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "train.txt").write_bytes((TINY / "train.txt").read_bytes())
    with pytest.raises(DataError, match=r"no dev trees .*trees/dev\.txt, dev\.txt"):
        prepare(tiny, str(source), tmp_path / "out")


def test_prepare_offline_without_source_says_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"cannot download https://nlp\.stanford\.edu/.*pass --source DIR\|ZIP"):
        prepare("sst", None, tmp_path)


def test_cli_prepare(tiny, tmp_path, capsys):
    assert data_command.main(["prepare", tiny, "--source", str(TINY), "--out", str(tmp_path)]) == 0
    assert (tmp_path / tiny / "dev.txt").is_file()
    assert data_command.main(["prepare", tiny, "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    assert "no such directory or zip file" in capsys.readouterr().err


# ---- load_split ----------------------------------------------------------------------------------------
def test_load_split_before_prepare_says_how(tmp_path):
    with pytest.raises(DataError, match=r"run `sentibert data prepare sst --source"):
        load_split("sst", "train", tmp_path)
    with pytest.raises(DataError, match="has no 'dev' split"):
        load_split("sst-paper", "dev", tmp_path)
    with pytest.raises(DataError, match="unknown dataset"):
        load_split("imdb", "train", tmp_path)


def test_load_split_reads_the_data_dir_from_the_environment(tiny, tmp_path, monkeypatch):
    prepare(tiny, str(TINY), tmp_path)
    monkeypatch.setenv("SENTIBERT_DATA_DIR", str(tmp_path))
    assert [t.root_label for t in load_split(tiny, "test")] == [0, 3]


# ---- the real data (mirror) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    if not MIRROR.is_dir():
        pytest.skip(f"data mirror not found at {MIRROR}")
    out = tmp_path_factory.mktemp("data")
    prepare("sst", str(MIRROR / "sst" / "trainDevTestTrees_PTB.zip"), out)
    prepare("sst-paper", str(MIRROR / "sentibert-paper"), out)
    return out


@pytest.mark.mirror
def test_sst_counts(prepared):
    trees = {split: load_split("sst", split, prepared) for split in SPLITS}
    assert {s: len(t) for s, t in trees.items()} == {"train": 8544, "dev": 1101, "test": 2210}
    assert {s: len(sst2_trees(t)) for s, t in trees.items()} == {"train": 6920, "dev": 872, "test": 1821}
    assert {s: sum(len(tree) for tree in t) for s, t in trees.items()} == {"train": 155019, "dev": 20173, "test": 40195}


@pytest.mark.mirror
def test_sst_paper_counts(prepared):
    train = (prepared / "sst-paper" / "train.txt").read_text(encoding="utf-8").splitlines()
    assert len(train) == 8379  # one tree a line; parsing them all is left to test_sst_counts (time)
    assert len(load_split("sst-paper", "test", prepared)) == 2184


@pytest.mark.mirror
def test_sst_from_the_mirror_directory(prepared, tmp_path):
    prepare("sst", str(MIRROR / "sst"), tmp_path)  # trees/{train,dev,test}.txt
    for split in SPLITS:
        assert (tmp_path / "sst" / f"{split}.txt").read_bytes() == (prepared / "sst" / f"{split}.txt").read_bytes()


# ---- issue 23: zip bombs, and the first command on a machine with neither mirror nor network ------------------
def test_a_zip_bomb_is_refused_by_its_declared_size_before_it_is_read(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_MEMBER_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("trees/train.txt", b"\0" * (4 << 20))  # 4 MB of zeros in 4 kB
    assert bomb.stat().st_size < 20_000
    read = []
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, pwd=None: read.append(name))
    with pytest.raises(DataError, match=r"bomb\.zip: trees/train\.txt declares 4194304 bytes .* refusing to extract"):
        prepare(tiny, str(bomb), tmp_path / "out")
    assert read == [] and not (tmp_path / "out").exists()


ROOT = Path(__file__).parents[1]


def make_data_command(mirror: Path, *overrides: str) -> list[str]:
    """The command `make data` runs (make -n: printed, not run), with MIRROR=mirror."""
    printed = subprocess.run(["make", "-n", "-C", str(ROOT), "data", f"MIRROR={mirror}", *overrides],
                             capture_output=True, text=True, check=True).stdout
    return next(line for line in printed.splitlines() if " data prepare " in line).split()


def test_make_data_reads_the_mirror_where_there_is_one(tmp_path):
    (tmp_path / "sst").mkdir()
    assert make_data_command(tmp_path) == ["sentibert", "data", "prepare", "sst", "--source", f"{tmp_path}/sst"]
    assert make_data_command(tmp_path, "DATA_SOURCE=/my/sst.zip")[-2:] == ["--source", "/my/sst.zip"]  # as .ci/run


def test_make_data_with_no_mirror_and_no_network_fails_in_one_line_naming_both_fixes(tmp_path, monkeypatch,
                                                                                      capsys):
    command = make_data_command(tmp_path / "no-mirror")
    assert command == ["sentibert", "data", "prepare", "sst"]  # no --source: the official archive

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    monkeypatch.chdir(tmp_path)
    assert data_command.main(command[2:]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sentibert data: error: cannot download https://nlp.stanford.edu/")
    assert "connect to a network" in err and "make main DATA_SOURCE=DIR|ZIP" in err and "--source DIR|ZIP" in err
    assert not (tmp_path / "data").exists()
