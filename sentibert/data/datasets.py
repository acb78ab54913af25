"""Datasets: fetch and verify SST tree files (`sentibert data prepare`), load splits (label views: labels.py).

Prepared data lives in `<data root>/<dataset>/<split>.txt`, one PTB tree per line, where the data root
is `--out`, else `$SENTIBERT_DATA_DIR`, else `data/` under the current directory.

Datasets
- `sst`: the Stanford Sentiment Treebank, standard split 8544 / 1101 / 2210 sentences.
- `sst-paper`: the subset the SentiBERT paper trains and tests on (8379 / 2184, no dev split): the
  standard train/test trees minus sentences with non-ASCII characters or backslash escapes.
- `labelled` (not prepared): the user's own labelled text files that `data=labelled` names (conf/data/labelled.yaml).
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from sentibert.data import DataError
from sentibert.data.labels import LABEL_VIEWS
from sentibert.data.transfer import load_labelled
from sentibert.data.tree import BinaryTree, read_trees
from sentibert.io import atomic_write_bytes


@dataclass(frozen=True)
class TreeFile:
    names: tuple[str, ...]  # where the file may sit in a source (dir, zip or base URL), tried in order
    sha256: str


@dataclass(frozen=True)
class Dataset:
    url: str | None  # default source: a .zip, or a base URL the file names are relative to; None: --source only
    files: dict[str, TreeFile]  # split -> file
    # Labelled text (these text and label columns; text None: transfer.TEXT_COLUMNS) instead of trees: parsed on
    # loading, label on the root.
    text_columns: tuple[str | None, str] | None = None
    num_classes: int = 5

    @property
    def suffix(self) -> str:
        return ".tsv" if self.text_columns else ".txt"


def _labelled_text(files: dict[str, tuple[str, str]], text: str, num_classes: int) -> Dataset:
    """A transfer dataset from the SentiBERT authors' release; no public URL serves these exact files."""
    return Dataset(url=None, files={split: TreeFile((name,), sha) for split, (name, sha) in files.items()},
                   text_columns=(text, "label"), num_classes=num_classes)


# The SentiBERT authors' files, pinned to a commit of their repository. The checksums are those of our
# local mirror of these files (sizes agree with the repository's); not checked against GitHub offline.
_PAPER_COMMIT = "e34746067ac41faa03a9dadf0cc2bbd590be5a75"

DATASETS: dict[str, Dataset] = {
    "sst": Dataset(
        url="https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",
        files={
            "train": TreeFile(("trees/train.txt", "train.txt"),
                              "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7"),
            "dev": TreeFile(("trees/dev.txt", "dev.txt"),
                            "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40"),
            "test": TreeFile(("trees/test.txt", "test.txt"),
                             "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761"),
        },
    ),
    "sst-paper": Dataset(
        url=f"https://raw.githubusercontent.com/WadeYin9712/SentiBERT/{_PAPER_COMMIT}/datasets/",
        files={
            "train": TreeFile(("sstphrase/sstphrase_train.txt", "train_trees.txt", "sstphrase_train.txt", "train.txt"),
                              "a38ed09959d2b72157ad64aa5869476ca60d69d7855f6a7b9cdbb8e71de4e001"),
            "test": TreeFile(("sst-3/sstphrase_test.txt", "test_trees.txt", "sstphrase_test.txt", "test.txt"),
                             "2c21debf71aabb61805e1ec8e47f84ed524018212b5cc3e43d8053ee14f6b028"),
        },
    ),
    # Transfer (the paper's Table 3). EmoInt: SemEval-2018 Task 1 emotion intensity, ordinal classes 0-3.
    **{f"emoint-{emotion}": _labelled_text({"train": (f"train_{emotion}.tsv", train_sha),
                                            "test": (f"test_{emotion}.tsv", test_sha)}, "text", 4)
       for emotion, (train_sha, test_sha) in {
           "anger": ("feb7a817271ff1fc07971021828ec3c61b2600169ca85657a1c94cdd3f1295c3",
                     "7f7924eab285db46b1dab09ec1c8d429f7c4f64d58d9ac5a02c66f1cc10ccaab"),
           "fear": ("1d0396001379c00bb5b86d07b71ce84b6e8e713c5c82143adefd4d40ce284291",
                    "077fc114276939d896e895ce91f56e441fa13b829dd158572132af69aea43e30"),
           "joy": ("4e148d3d725b7b87e0ff19833feb77fff8059a3cd6f91979e99854efc9d1119f",
                   "9222c0598bcbe1e2a6e2335ee0476f779caca5ac96acbacbd587596be6b8a3a6"),
           "sad": ("d2225733245c9ede0cfc98d615d514cf54b6650434f27522641dc6883b116bfd",
                   "95ccce4bb20977133f63e3a1443cbb0cbf9d1c150edf546536d5d77ab6c973d2"),
       }.items()},
    # GLUE SST-2 as the authors release it (phrases and sentences, 0/1; GLUE's test labels are hidden: dev is test).
    "sst2-glue": _labelled_text({
        "train": ("train.tsv", "9c5690ad348976cc76484c8682138fda4feb7173728907fbf6f81a0069058085"),
        "test": ("dev.tsv", "e1eb7882351fa5258c20b21339be97d51f03dd5bcc3dd255ad14f2458f218b32")}, "sentence", 2),
}


LABELLED = "labelled"  # data.dataset of data=labelled: the files its config names, not a prepared dataset


def data_root(out: str | Path | None = None) -> Path:
    return Path(out or os.environ.get("SENTIBERT_DATA_DIR") or "data")


def dataset_info(name: str) -> Dataset:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose from: {', '.join(DATASETS)}")
    return DATASETS[name]


def data_info(data) -> Dataset:
    """The Dataset a data config (conf/data) reads: a prepared one by name; for data=labelled, the columns and
    classes its config sets (its files are the config's data.train, data.dev, data.test)."""
    if data.dataset != LABELLED:
        return dataset_info(data.dataset)
    if "num_classes" not in data:  # a DataConfig: `data.dataset=labelled` on another data config
        raise DataError("data.dataset=labelled: use data=labelled (conf/data/labelled.yaml), which names the files")
    if data.num_classes is None:
        raise DataError("data=labelled needs data.num_classes=N: the labels are the class ids 0 to N-1")
    if data.label_names is not None and len(data.label_names) != data.num_classes:
        raise DataError(f"data.label_names has {len(data.label_names)} names for data.num_classes={data.num_classes}"
                        " classes: give one name per class")
    return Dataset(url=None, files={}, text_columns=(data.text_column, data.label_column), num_classes=data.num_classes)


def is_labelled_text(data) -> bool:
    """Whether a data config reads labelled text (a label on each root only: the transfer metrics), not trees."""
    return data_info(data).text_columns is not None


# ---- loading -----------------------------------------------------------------------------------------
def split_path(name: str, split: str, data_dir: str | Path | None = None) -> Path:
    dataset = dataset_info(name)
    if split not in dataset.files:
        raise DataError(f"dataset {name!r} has no {split!r} split (it has: {', '.join(dataset.files)})")
    return data_root(data_dir) / name / f"{split}{dataset.suffix}"


def load_split(name: str, split: str, data_dir: str | Path | None = None,
               load_parser: Callable | None = None) -> list[BinaryTree]:
    """The trees of one split of a prepared dataset; labelled text is parsed by load_parser()
    (transfer.load_labelled) with its label on the root. A DataError for a split with no trees, a TreeFormatError or
    LabelledTextError (file:line) for a label that is not one of the dataset's classes."""
    path = split_path(name, split, data_dir)
    if not path.is_file():
        raise DataError(
            f"{path} not found: run `sentibert data prepare {name} --source DIR|ZIP` "
            f"(or set SENTIBERT_DATA_DIR to where the data was prepared)"
        )
    info = dataset_info(name)
    if info.text_columns:
        trees = load_labelled(path, load_parser, *info.text_columns, num_classes=info.num_classes)
    else:
        trees = read_trees(path, num_classes=info.num_classes)  # labels outside the classes fail here, named
    if not trees:
        what = "rows" if info.text_columns else "trees"
        raise DataError(f"{path}: empty, the {split} split of {name} has no {what}: prepare it again "
                        f"(`sentibert data prepare {name} --source DIR|ZIP`)")
    return trees


def load_labelled_split(data, split: str, load_parser: Callable | None = None) -> list[BinaryTree]:
    """The trees of data=labelled's file for `split` (data.train, data.dev or data.test), parsed by load_parser(),
    each label on its root. Errors (LabelledTextError) name file:line: a malformed row, a missing column, a label
    that is not a class."""
    info, path = data_info(data), data[split]
    if not path:
        raise DataError(f"data=labelled has no {split} file: set data.{split}=FILE (.tsv, .csv or .jsonl)")
    trees = load_labelled(path, load_parser, *info.text_columns, num_classes=info.num_classes, names=data.label_names)
    if not trees:
        raise DataError(f"{path}: empty, data.{split} has no labelled rows")
    return trees


SPLITS = ("train", "dev", "test")


def load_splits(data, splits: Sequence[str] = SPLITS,
                load_parser: Callable | None = None) -> dict[str, list[BinaryTree]]:
    """The trees of the named splits of a data config (conf/data); labelled text is parsed by load_parser()
    (transfer.load_labelled). With `data.dev_from_train` > 0, dev is that fraction of train, drawn with
    `data.dev_seed`, and train is the rest (datasets without a dev split: sst-paper; data=labelled without a data.dev
    file)."""
    labelled = data.dataset == LABELLED

    def read(split: str) -> list[BinaryTree]:
        if labelled:
            return load_labelled_split(data, split, load_parser)
        return load_split(data.dataset, split, data.root, load_parser)

    held_out = {}
    if data.dev_from_train > 0 and not (labelled and data.dev) and {"train", "dev"} & set(splits):
        train = read("train")
        dev = set(random.Random(data.dev_seed).sample(range(len(train)), round(data.dev_from_train * len(train))))
        held_out = {"train": [t for i, t in enumerate(train) if i not in dev],
                    "dev": [t for i, t in enumerate(train) if i in dev]}
        for split, trees in held_out.items():
            if not trees:
                source = data.train if labelled else split_path(data.dataset, "train", data.root)
                raise DataError(f"data.dev_from_train={data.dev_from_train} leaves {split} empty: it holds out "
                                f"{len(dev)} of the {len(train)} trees of {source}; choose a fraction that leaves "
                                "trees in both")
    return {split: held_out[split] if split in held_out else read(split) for split in splits}


def task_classes(data) -> int:
    """How many classes a model for this data config predicts: the dataset's, or 3 with label_view=sst3."""
    info = data_info(data)
    if data.label_view is None:
        return info.num_classes
    if data.label_view not in LABEL_VIEWS:
        raise DataError(f"data.label_view={data.label_view!r}: choose from {', '.join(LABEL_VIEWS)} (or null)")
    if info.text_columns:
        raise DataError(f"data.label_view applies to SST trees, not to {data.dataset}'s labels")
    return len(set(map(LABEL_VIEWS[data.label_view], range(info.num_classes))))


def first_batches(trees: Sequence[BinaryTree], batch_size: int, limit: int | None) -> list[BinaryTree]:
    """The first `limit` x `batch_size` trees, or all of them when `limit` is None (limit_eval_batches)."""
    return list(trees[:limit * batch_size] if limit else trees)


# ---- prepare -----------------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Both ways out of a failed download; `make main` / `make data` pass DATA_SOURCE on as --source.
DOWNLOAD_FIXES = ("connect to a network, or pass --source DIR|ZIP with a local copy of the files "
                  "(with make: `make main DATA_SOURCE=DIR|ZIP`)")


def _download(url: str, missing_ok: bool = False) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        if missing_ok and err.code == 404:
            return None
        raise DataError(f"cannot download {url} (HTTP {err.code}): {DOWNLOAD_FIXES}") from None
    except OSError as err:  # URLError, timeouts, refused connections
        reason = getattr(err, "reason", err)
        raise DataError(f"cannot download {url} ({reason}): {DOWNLOAD_FIXES}") from None


MAX_MEMBER_BYTES = 64 << 20  # a zip member's declared size, checked before it is read: 17 x the largest file here


def _zip_reader(data: bytes, where: str) -> Callable[[str], bytes | None]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(f"{where}: not a valid zip archive") from None
    members = set(archive.namelist())

    def read(name: str) -> bytes | None:
        if name not in members:
            return None
        # zipfile never inflates a member past its declared size, so this bounds the memory a zip bomb can take
        if (size := archive.getinfo(name).file_size) > MAX_MEMBER_BYTES:
            raise DataError(f"{where}: {name} declares {size} bytes uncompressed, more than the {MAX_MEMBER_BYTES} "
                            "any dataset file takes: refusing to extract it (not the official archive?)")
        try:
            return archive.read(name)
        # a bad CRC, a damaged deflate stream, a cut-off member, an unsupported method or a password
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
            raise DataError(f"{where}: {name} cannot be extracted ({err}); the archive is damaged: "
                            "download it again") from None

    return read


def _source_reader(source: str) -> Callable[[str], bytes | None]:
    """A function that returns a file of the source by relative name, or None when it has no such file."""
    if source.startswith(("http://", "https://")):
        if source.endswith(".zip"):
            return _zip_reader(_download(source), source)
        return lambda name: _download(source.rstrip("/") + "/" + name, missing_ok=True)
    path = Path(source)
    if path.is_dir():
        return lambda name: (path / name).read_bytes() if (path / name).is_file() else None
    if path.is_file():
        return _zip_reader(path.read_bytes(), source)
    raise DataError(f"--source {source}: no such directory or zip file")


def _first_found(read: Callable[[str], bytes | None], names: Iterable[str]) -> tuple[str, bytes | None]:
    for name in names:
        data = read(name)
        if data is not None:
            return name, data
    return "", None


def _is_prepared(path: Path, sha256: str) -> bool:
    return path.is_file() and _sha256(path.read_bytes()) == sha256


def prepare(name: str, source: str | None = None, out: str | Path | None = None) -> Path:
    """Copy a dataset's tree files from `source` (default: its official URL) to `<root>/<name>/`.

    Every file must match its pinned SHA-256 before anything is written; files already in place and
    verified are left alone, so re-running does nothing.
    """
    dataset = dataset_info(name)
    target = data_root(out) / name
    if all(_is_prepared(target / f"{split}{dataset.suffix}", f.sha256) for split, f in dataset.files.items()):
        print(f"{name}: already prepared in {target}")
        return target

    if not (source or dataset.url):
        raise DataError(f"{name} has no public download pinned here: pass --source DIR (e.g. the files of the "
                        f"SentiBERT authors' release, {', '.join(f.names[0] for f in dataset.files.values())})")
    source = str(source or dataset.url)
    read = _source_reader(source)
    verified: dict[str, bytes] = {}
    for split, file in dataset.files.items():
        member, data = _first_found(read, file.names)
        if data is None:
            raise DataError(f"{source}: no {split} trees for {name} (looked for {', '.join(file.names)})")
        if _sha256(data) != file.sha256:
            raise DataError(
                f"{source}: {member} has SHA-256 {_sha256(data)}, expected {file.sha256} "
                f"({name} {split}); is this the official release?"
            )
        verified[split] = data
    for split, data in verified.items():
        atomic_write_bytes(target / f"{split}{dataset.suffix}", data)
    print(f"{name}: wrote {', '.join(verified)} to {target}")
    return target
