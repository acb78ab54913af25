"""Bad input is refused in one line that names the file and the fix, never silently mangled, never a traceback.

One group per case of the issue "Nothing silently wrong": line-exact reading, non-UTF-8 files, counts, devices,
closed stdin, corrupt zips, the parse cache, checkpoints that would run code, damaged checkpoints; then the training
side: labels and empty splits checked at load, one-line errors from the Hydra commands, ranges, CUDA without a GPU,
damaged training checkpoints, a full disk, no network unless asked, the run's log file.
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import transformers
from fakes import RightBranchingParser, right_branching

from sentibert import cli
from sentibert.config import SAMPLE_DATA_DIR
from sentibert.data.tree import BinaryTree, TreeFormatError, read_trees
from sentibert.inference import predict as predict_module
from sentibert.models.model import TreeSentimentModel
from sentibert.parsing import parse

transformers.logging.set_verbosity_error()
pytestmark = pytest.mark.usefixtures("no_full_error")


def run(capsys, *argv):
    """`sentibert ARGV` in-process -> (exit code, stdout, stderr); argparse's exits count as exit codes."""
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exit_:
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err: str, *parts: str) -> str:
    """The last stderr line, after checking stderr holds no traceback and that line names every part."""
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    for part in parts:
        assert part in line, line
    return line


# ---- 1. one input line is one record --------------------------------------------------------------------------
# str.splitlines() also splits on these; a file's lines are separated by \n alone.
ODD_BREAKS = "not bad\x0cat all\ngreat\x1cfilm\x85really\nso\u2028bad\r\n"


def test_split_lines_splits_on_newline_only():
    from sentibert.io import split_lines

    assert split_lines(ODD_BREAKS) == ["not bad\x0cat all", "great\x1cfilm\x85really", "so\u2028bad"]
    assert split_lines("") == [] and split_lines("a\n\nb") == ["a", "", "b"] and split_lines("a\r\n") == ["a"]


def test_parse_gives_one_tree_per_input_line(fake_parser, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(ODD_BREAKS, encoding="utf-8")
    rc, out, err = run(capsys, "parse", "--in", tmp_path / "in.txt")
    assert rc == 0 and len(out.splitlines()) == 3 and len(fake_parser.calls[0]) == 3


def test_predict_gives_one_prediction_per_input_line(checkpoint, fake_parser, tmp_path, capsys):
    (tmp_path / "in.txt").write_text(ODD_BREAKS, encoding="utf-8")
    rc, out, err = run(capsys, "predict", "--checkpoint", checkpoint, "--in", tmp_path / "in.txt", "--format", "json")
    assert rc == 0 and len(json.loads(out)) == 3


def test_tree_files_count_lines_as_editors_do(tmp_path, capsys):
    """A lone \\r is not a line break: line numbers in errors match the file, and analysis keeps one record per line."""
    trees = tmp_path / "trees.txt"
    trees.write_text("(3 (2 a) (3 b))\n(3 (2 a) (3 b))\r \n(3 (2 a) (3 b)\n", encoding="utf-8")
    with pytest.raises(TreeFormatError, match=r"trees\.txt:3: unbalanced"):
        read_trees(trees)
    rc, out, err = run(capsys, "data", "analyze", "--trees", trees, "--out", tmp_path / "a.jsonl")
    assert rc == 1 and f"{trees}:3: unbalanced" in err
    trees.write_text("(3 (2 a) (3 b))\n(1 (2 c) (1 d))\r(2 (2 e) (2 f))\n", encoding="utf-8")  # two trees on line 2
    rc, out, err = run(capsys, "data", "analyze", "--trees", trees, "--out", tmp_path / "a.jsonl")
    assert rc == 1 and f"{trees}:2: not a PTB tree" in err


def test_labelled_text_rows_end_at_newline_only(tmp_path):
    from sentibert.data.transfer import LabelledTextError, read_labelled

    tsv = tmp_path / "tweets.tsv"
    tsv.write_text("text\tlabel\nso\u2028good\t3\nnot\rbad\t2\n", encoding="utf-8")
    with pytest.raises(LabelledTextError, match=r"tweets\.tsv:3: not a TSV row"):  # a \r is not a row break
        read_labelled(tsv)
    tsv.write_text("text\tlabel\nso\u2028good\t3\nnot bad\t2\r\n", encoding="utf-8")
    assert read_labelled(tsv) == (["so\u2028good", "not bad"], [3, 2])


# ---- 2. files that are not UTF-8 ------------------------------------------------------------------------------
NOT_UTF8 = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "utf-16": "(3 (2 a) (3 b))\n".encode("utf-16"),
    "latin-1": "(3 (2 a) (3 b))\n(2 caf\xe9)\n".encode("latin-1"),
}


@pytest.fixture(params=NOT_UTF8)
def not_utf8(request, tmp_path):
    path = tmp_path / f"{request.param}.txt"
    path.write_bytes(NOT_UTF8[request.param])
    return path


def test_non_utf8_files_are_named_not_a_traceback(not_utf8, checkpoint, fake_parser, tmp_path, capsys):
    commands = [("data", "analyze", "--trees", not_utf8, "--out", tmp_path / "a.jsonl"),
                ("parse", "--in", not_utf8),
                ("predict", "--checkpoint", checkpoint, "--in", not_utf8)]
    for argv in commands:
        rc, out, err = run(capsys, *argv)
        assert rc == 1
        one_line_error(err, str(not_utf8), "UTF-8")
    assert fake_parser.calls == []
    with pytest.raises(TreeFormatError, match="UTF-8"):  # prepared data files
        read_trees(not_utf8)


def test_non_utf8_labelled_text_and_predictions_are_named(not_utf8, tmp_path):
    from sentibert.data.transfer import LabelledTextError, read_labelled
    from sentibert.runs import RunFolderError, read_predictions

    shutil.copyfile(not_utf8, tmp_path / "data.tsv")
    with pytest.raises(LabelledTextError, match="data.tsv.*UTF-8"):
        read_labelled(tmp_path / "data.tsv")
    with pytest.raises(RunFolderError, match=f"{not_utf8.name}.*UTF-8"):
        read_predictions(not_utf8)


def test_non_utf8_stdin_is_named(fake_parser, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(NOT_UTF8["latin-1"]), encoding="utf-8"))
    rc, out, err = run(capsys, "parse")
    assert rc == 1
    assert one_line_error(err, "<stdin>:2", "UTF-8", "0xe9")


# ---- 3. counts ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "0"])
def test_batch_size_must_be_positive(value, checkpoint, fake_parser, capsys):
    rc, out, err = run(capsys, "predict", "--checkpoint", checkpoint, "--batch-size", value, "fine")
    assert rc == 2 and out == ""
    one_line_error(err, "--batch-size", "positive integer")
    with pytest.raises(predict_module.PredictError, match="batch_size"):
        predict_module.predict(["fine"], checkpoint, RightBranchingParser(), batch_size=int(value))


# ---- 4. devices -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device, message", [("cuda", "no CUDA device is available"), ("gpu", "not a device")])
def test_a_device_that_is_not_there_is_named(device, message, checkpoint, fake_parser, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, out, err = run(capsys, "predict", "--checkpoint", checkpoint, "--device", device, "fine")
    assert rc == 1
    one_line_error(err, f"--device {device}", message)


# ---- 5. stdin -------------------------------------------------------------------------------------------------
def test_closed_stdin_is_an_error_and_empty_stdin_is_no_input(checkpoint, fake_parser, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", None)  # what Python makes of a closed fd 0 (`sentibert parse <&-`)
    for argv in (["parse"], ["predict", "--checkpoint", checkpoint, "--in", "-"]):
        rc, out, err = run(capsys, *argv)
        assert rc == 1
        one_line_error(err, "<stdin>: closed")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # `sentibert parse < /dev/null`
    assert run(capsys, "parse") == (0, "", "")


def test_closed_stdin_in_a_real_process(tmp_path):
    env = {**os.environ, "SENTIBERT_CACHE": str(tmp_path)}
    done = subprocess.run(["bash", "-c", 'exec "$0" -m sentibert.cli parse <&-', sys.executable],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    one_line_error(done.stderr, "<stdin>: closed")


# ---- 6. corrupt zips ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_corrupt_zip_member_is_named(compression, tmp_path, capsys):
    from sentibert.data.datasets import DataError, prepare

    text = "(3 (2 a) (3 (2 good) (3 film)))\n" * 50
    archive = tmp_path / "sst.zip"
    with zipfile.ZipFile(archive, "w", compression) as z:
        for split in ("train", "dev", "test"):
            z.writestr(f"trees/{split}.txt", text)
    data = bytearray(archive.read_bytes())
    start = data.index(b"trees/train.txt") + len("trees/train.txt") + 20  # inside train.txt's data
    data[start:start + 8] = b"\xff" * 8
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"sst\.zip: trees/train\.txt"):
        prepare("sst", str(archive), tmp_path / "data")
    rc, out, err = run(capsys, "data", "prepare", "sst", "--source", archive, "--out", tmp_path / "data")
    assert rc == 1
    one_line_error(err, str(archive), "trees/train.txt", "download")
    assert not (tmp_path / "data" / "sst").exists()


# ---- 7. the parse cache -------------------------------------------------------------------------------------------
@pytest.fixture
def cached_parser(tmp_path, monkeypatch):
    """A Parser with a fake model (right-branching trees); `calls` records what reached the 'pipeline'."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in parse.CHART_FILES:
        (model_dir / name).write_bytes(b"weights")
    calls = []

    def parse_uncached(self, batch, texts, source):
        calls.extend(batch)
        return [right_branching(text) for text in batch]

    monkeypatch.setattr(parse.Parser, "_parse_uncached", parse_uncached)
    parser = parse.Parser(parse.ParserModel("fake", model_dir), cache_dir=tmp_path / "cache")
    parser.calls = calls
    return parser


def test_a_cache_entry_holding_another_sentence_is_parsed_again(cached_parser, caplog):
    good, bad = cached_parser.parse(["good film", "bad acting here"])
    entries = {path.stat().st_size: path for path in cached_parser.cache_dir.iterdir()}
    assert len(entries) == 2
    small, large = sorted(entries.items())
    shutil.copyfile(large[1], small[1])  # 'good film' now holds the tree of 'bad acting here'
    cached_parser.calls.clear()
    assert cached_parser.parse(["good film"]) == [good]
    assert cached_parser.calls == ["good film"]
    assert "parsing it again" in caplog.text


def test_a_corrupt_cache_entry_is_parsed_again(cached_parser, caplog):
    [tree] = cached_parser.parse(["good film"])
    [entry] = cached_parser.cache_dir.iterdir()
    entry.write_bytes(entry.read_bytes()[:10])
    cached_parser.calls.clear()
    assert cached_parser.parse(["good film"]) == [tree]
    assert cached_parser.calls == ["good film"] and "parsing it again" in caplog.text
    assert cached_parser.parse(["good film"]) == [tree] and cached_parser.calls == ["good film"]  # rewritten


def test_an_unwritable_cache_warns_and_parsing_goes_on(cached_parser, tmp_path, caplog):
    (tmp_path / "file").write_text("")
    parser = parse.Parser(cached_parser.model, cache_dir=tmp_path / "file")  # its cache dir cannot be created
    assert parser.parse(["good film", "so bad"]) == [right_branching("good film"), right_branching("so bad")]
    assert caplog.text.count("parse cache") == 1  # one warning, not one per sentence


def test_predict_can_skip_the_cache(checkpoint, fake_parser, capsys):
    assert run(capsys, "predict", "--checkpoint", checkpoint, "fine")[0] == 0
    assert fake_parser.use_cache is True
    assert run(capsys, "predict", "--checkpoint", checkpoint, "--no-cache", "fine")[0] == 0
    assert fake_parser.use_cache is False


# ---- 8. checkpoints never run code --------------------------------------------------------------------------------
EVIL = """import pathlib
pathlib.Path({marker!r}).write_text("executed")
from transformers import PreTrainedTokenizerFast, BertModel
class EvilTokenizer(PreTrainedTokenizerFast): pass
class EvilModel(BertModel): pass
"""


def tamper(checkpoint: Path, directory: Path, file: str, edit) -> Path:
    shutil.copytree(checkpoint, directory)
    (directory / "evil.py").write_text(EVIL.format(marker=str(directory.parent / "marker")))
    config = json.loads((directory / file).read_text())
    edit(config)
    (directory / file).write_text(json.dumps(config))
    return directory


TAMPERING = {
    "tokenizer auto_map": ("tokenizer_config.json", lambda c: c.update(
        tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": ["evil.EvilTokenizer", "evil.EvilTokenizer"]})),
    "model auto_map": ("config.json", lambda c: c["encoder_config"].update(auto_map={"AutoModel": "evil.EvilModel"})),
    "attention kernel": ("config.json", lambda c: c["encoder_config"].update(
        attn_implementation="kernels-community/evil")),
}


@pytest.mark.parametrize("tampering", TAMPERING)
def test_a_checkpoint_that_would_run_code_is_refused(tampering, checkpoint, fake_parser, tmp_path, capsys):
    from sentibert.models.checkpoint import CheckpointError

    file, edit = TAMPERING[tampering]
    directory = tamper(checkpoint, tmp_path / "tampered", file, edit)
    with pytest.raises(CheckpointError, match=str(directory / file)):
        TreeSentimentModel.from_pretrained(directory)
    rc, out, err = run(capsys, "predict", "--checkpoint", directory, "fine")
    assert rc == 1
    one_line_error(err, str(directory / file))
    assert not (tmp_path / "marker").exists()


def test_an_encoder_directory_that_would_run_code_is_refused(checkpoint, tmp_path):
    from sentibert.models.checkpoint import CheckpointError
    from sentibert.models.encoder import load_tokenizer

    file, edit = TAMPERING["tokenizer auto_map"]
    directory = tamper(checkpoint, tmp_path / "encoder", file, edit)
    with pytest.raises(CheckpointError, match="auto_map"):
        load_tokenizer(str(directory))
    assert not (tmp_path / "marker").exists()


def test_every_transformers_load_refuses_remote_code():
    """No Auto*.from_pretrained / from_config call may leave trust_remote_code to transformers, which asks on stdin."""
    import re

    calls = 0
    for path in Path(cli.__file__).parent.rglob("*.py"):
        source = path.read_text()
        for match in re.finditer(r"(?i)\bauto\w*\.from_(pretrained|config)\(", source):
            depth, end = 1, match.end()
            while depth:  # to the call's closing parenthesis
                depth += {"(": 1, ")": -1}.get(source[end], 0)
                end += 1
            calls += 1
            assert "trust_remote_code=False" in source[match.start():end], f"{path.name}: {source[match.start():end]}"
    assert calls >= 6


# ---- 9. damaged checkpoints ---------------------------------------------------------------------------------------
DAMAGE = {
    "truncated weights": ("model.safetensors", lambda data: data[:len(data) // 2]),
    "weights cut in the header": ("model.safetensors", lambda data: data[:100]),
    "config not JSON": ("config.json", lambda data: data[:len(data) // 2]),
    "config not a sentibert config": ("config.json", lambda data: b'{"model": "SentiBERT"}'),
    "config for no known model type": ("config.json", lambda data: data.replace(b'"bert"', b'"nonsense"')),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_names_the_file(damage, checkpoint, fake_parser, tmp_path, capsys):
    from sentibert.models.checkpoint import CheckpointError

    file, edit = DAMAGE[damage]
    directory = shutil.copytree(checkpoint, tmp_path / "damaged")
    (directory / file).write_bytes(edit((directory / file).read_bytes()))
    with pytest.raises(CheckpointError, match=str(directory / file)):
        TreeSentimentModel.from_pretrained(directory)
    rc, out, err = run(capsys, "predict", "--checkpoint", directory, "fine")
    assert rc == 1
    one_line_error(err, str(directory / file))


# ---- 10. data validated when it loads -----------------------------------------------------------------------------
FIXTURE_ROOT = Path(SAMPLE_DATA_DIR)  # the sample treebank shipped in the package (data=fixture)
# 48 train trees, batches of 8; one epoch of 2 batches: a whole run takes seconds.
TRAIN = ["encoder=tiny", "data=fixture", f"data.root={FIXTURE_ROOT}", "logger=none", "trainer.max_epochs=1",
         "trainer.limit_train_batches=2", "trainer.limit_eval_batches=1", "trainer.lr=1e-3"]


@pytest.fixture
def data_root(tmp_path):
    """A copy of the fixture's prepared `sst`, to damage."""
    return shutil.copytree(FIXTURE_ROOT, tmp_path / "data")


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[number - 1] = text
    path.write_text("\n".join(lines), encoding="utf-8")


def test_a_tree_label_outside_the_classes_is_named_at_load(data_root):
    from sentibert.data.datasets import load_split

    replace_line(data_root / "sst" / "train.txt", 3, "(0 (2 (2 the) (2 film)) (7 (2 is) (0 awful)))")
    with pytest.raises(TreeFormatError, match=r"train\.txt:3: label 7 is out of range: this dataset's classes "
                                              r"are 0-4"):
        load_split("sst", "train", data_root)


def test_a_tree_label_that_is_not_a_number_is_refused_and_x_means_unlabelled(data_root):
    from sentibert.data.datasets import load_split
    from sentibert.data.tree import UNLABELED

    train = data_root / "sst" / "train.txt"
    replace_line(train, 3, "(0 (2 (2 the) (2 film)) (X (2 is) (0 awful)))")  # X: no label, as parsers write
    assert load_split("sst", "train", data_root)[2].labels[2] == UNLABELED
    replace_line(train, 3, "(0 (2 (2 the) (2 film)) (neg (2 is) (0 awful)))")  # was silently "no label"
    with pytest.raises(TreeFormatError, match=r"train\.txt:3: label 'neg' is not a class number \(or X"):
        load_split("sst", "train", data_root)
    with pytest.raises(TreeFormatError, match="label '-1'"):
        BinaryTree.from_ptb("(-1 (2 a) (2 b))")


@pytest.mark.parametrize("label, message", [("5", "label 5 in column 'label' is out of range: this dataset's "
                                                   "classes are 0-3"),
                                            ("-1", "label -1 in column 'label' is out of range"),
                                            ("high", "label 'high' in column 'label' is not an integer class")])
def test_a_text_label_outside_the_classes_is_named_at_load(label, message, tmp_path):
    from sentibert.data.datasets import load_split
    from sentibert.data.transfer import LabelledTextError

    (tmp_path / "emoint-joy").mkdir()
    (tmp_path / "emoint-joy" / "train.tsv").write_text(f"text\tlabel\nso happy\t3\nnot happy\t{label}\n")
    with pytest.raises(LabelledTextError, match=rf"train\.tsv:3: {re.escape(message)}"):
        load_split("emoint-joy", "train", tmp_path)  # before any parser loads


def test_an_empty_split_fails_before_training(data_root, tmp_path, capsys):
    from sentibert.data.datasets import DataError, load_split

    (data_root / "sst" / "dev.txt").write_text("\n")
    with pytest.raises(DataError, match=r"dev\.txt: empty, the dev split of sst has no trees: prepare it again"):
        load_split("sst", "dev", data_root)
    rc, out, err = run(capsys, "train", *TRAIN, f"data.root={data_root}", f"hydra.run.dir={tmp_path / 'run'}")
    assert rc == 1 and not (tmp_path / "run" / "checkpoints").exists()
    one_line_error(err, "sentibert train: error:", str(data_root / "sst" / "dev.txt"), "empty")


def test_a_dev_fraction_that_leaves_a_split_empty_fails(tmp_path, capsys):
    rc, out, err = run(capsys, "train", *TRAIN, "data.dev_from_train=0.01", f"hydra.run.dir={tmp_path}")
    assert rc == 1
    one_line_error(err, "data.dev_from_train=0.01 leaves dev empty", str(FIXTURE_ROOT / "sst" / "train.txt"))


# ---- 11. the Hydra commands: one line, no traceback -----------------------------------------------------------------
@pytest.mark.parametrize("command, argv, message", [
    ("train", [*TRAIN, "data.root=/nonexistent"], "/nonexistent/sst/train.txt not found: run `sentibert data prepare"),
    ("evaluate", ["checkpoint=/nonexistent", "data=fixture"], "/nonexistent: neither a bundled model (minilm, mpnet)"),
    ("train", [*TRAIN, "model.num_classes=3"], "model.num_classes=3 but sst has 5 classes"),  # our own ValueError
])
def test_a_hydra_command_error_is_one_line(command, argv, message, tmp_path, capsys):
    rc, out, err = run(capsys, command, *argv, f"hydra.run.dir={tmp_path}")
    assert rc == 1
    assert one_line_error(err, message).startswith(f"sentibert {command}: error: ")
    assert "Error executing job" not in err and err.count("error:") == 1


def test_the_traceback_is_there_for_who_asks(monkeypatch, tmp_path, capsys):
    from sentibert.data.datasets import DataError

    monkeypatch.setenv("SENTIBERT_DEBUG", "1")  # Hydra's report: the traceback from our code down
    rc, out, err = run(capsys, "train", *TRAIN, "data.root=/nonexistent", f"hydra.run.dir={tmp_path}")
    assert rc == 1 and "Traceback" in err and "in load_split" in err and "DataError: /nonexistent" in err
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # the error itself, raised through Hydra
    with pytest.raises(DataError, match="not found"):
        run(capsys, "train", *TRAIN, "data.root=/nonexistent", f"hydra.run.dir={tmp_path}")


def test_the_traceback_is_there_for_who_asks_in_every_command(monkeypatch, tmp_path, capsys):
    """The argparse commands (parse, predict, compare, ...) too: their one line, or with SENTIBERT_DEBUG=1 the error."""
    missing = tmp_path / "missing.txt"
    rc, out, err = run(capsys, "parse", "--in", missing)
    assert rc == 1 and one_line_error(err, str(missing)).startswith("sentibert parse: error: ")
    monkeypatch.setenv("SENTIBERT_DEBUG", "1")
    with pytest.raises(OSError, match="missing.txt"):
        run(capsys, "parse", "--in", missing)


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path, capsys):
    from sentibert.training import loop as train

    def broken(cfg, run_dir):
        return int("not a number")  # a ValueError, but not one of our checks

    monkeypatch.setattr(train, "train", broken)
    rc, out, err = run(capsys, "train", *TRAIN, f"hydra.run.dir={tmp_path}")
    assert rc == 1 and "Traceback" in err and "invalid literal for int()" in err


def test_a_multirun_job_error_is_one_line_too(tmp_path, capsys):
    rc, out, err = run(capsys, "train", "-m", *TRAIN, "trainer.lr=0,-1", f"hydra.sweep.dir={tmp_path}")
    assert rc == 1 and "Traceback" not in err
    assert "sentibert train: error: trainer.lr=0.0 is out of range: use a value > 0" in err


def test_a_real_process_prints_one_line(tmp_path):
    """What torchrun starts: `python -m sentibert.commands.train`."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "SENTIBERT_DEBUG")}
    done = subprocess.run([sys.executable, "-m", "sentibert.commands.train", *TRAIN, "data.root=/nonexistent",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    assert one_line_error(done.stderr, "not found").startswith("sentibert train: error: /nonexistent/sst/train.txt")


# ---- 12. values out of range fail before anything loads -------------------------------------------------------
OUT_OF_RANGE = {
    "trainer.lr=0": "trainer.lr=0.0 is out of range: use a value > 0",
    "trainer.lr=-1e-5": "trainer.lr=-1e-05 is out of range: use a value > 0",
    "data.batch_size=0": "data.batch_size=0 is out of range: use a value >= 1",
    "data.eval_batch_size=0": "data.eval_batch_size=0 is out of range: use a value >= 1",
    "trainer.max_epochs=0": "trainer.max_epochs=0 is out of range: use a value >= 1",
    "trainer.warmup_ratio=1.5": "trainer.warmup_ratio=1.5 is out of range: use a value in [0, 1]",
    "trainer.warmup_ratio=-0.1": "trainer.warmup_ratio=-0.1 is out of range: use a value in [0, 1]",
    "trainer.grad_clip=-1": "trainer.grad_clip=-1.0 is out of range: use a value >= 0",
    "trainer.mlm_probability=1": "trainer.mlm_probability=1.0 is out of range: use a value in [0, 1)",
    "data.dev_from_train=1": "data.dev_from_train=1.0 is out of range: use a value in [0, 1)",
    "encoder.max_length=1": "encoder.max_length=1 is out of range: use a value >= 2",
    "model.dropout=1": "model.dropout=1.0 is out of range: use a value in [0, 1)",
    "trainer.log_every_n_steps=0": "trainer.log_every_n_steps=0 is out of range: use a value >= 1",
    "trainer.limit_train_batches=0": "trainer.limit_train_batches=0 is out of range: use a value >= 1 (or null)",
}


@pytest.mark.parametrize("override", OUT_OF_RANGE)
def test_a_value_out_of_range_fails_before_anything_loads(override, tmp_path, capsys):
    rc, out, err = run(capsys, "train", *TRAIN, "data.root=/nonexistent", override, f"hydra.run.dir={tmp_path}")
    assert rc == 1  # the range, not the missing data
    assert one_line_error(err) == f"sentibert train: error: {OUT_OF_RANGE[override]}"


def test_evaluate_and_bench_check_ranges_too(tmp_path, capsys):
    rc, out, err = run(capsys, "evaluate", "checkpoint=/nonexistent", "data.eval_batch_size=0",
                       f"hydra.run.dir={tmp_path}")
    assert rc == 1 and one_line_error(err).endswith("data.eval_batch_size=0 is out of range: use a value >= 1")
    rc, out, err = run(capsys, "bench", "encoder=tiny", "batches=0", f"hydra.run.dir={tmp_path}")
    assert rc == 1 and one_line_error(err).endswith("batches=0 is out of range: use a value >= 1")


def test_every_shipped_config_is_in_range():
    from hydra import compose, initialize_config_dir

    from sentibert.config import CONF_DIR, validate

    conf = Path(CONF_DIR)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for group in ("experiment", "model", "data", "trainer", "encoder"):
            for file in conf.glob(f"{group}/*.yaml"):
                validate(compose("train", overrides=[f"{group}={file.stem}"]))
        validate(compose("evaluate", overrides=["checkpoint=x"]))
        validate(compose("bench"))


# ---- 13. a device that is not there, in the Hydra commands ---------------------------------------------------------
@pytest.mark.parametrize("command, argv, setting", [
    ("train", [*TRAIN, "trainer.device=cuda"], "trainer.device=cuda"),
    ("evaluate", ["checkpoint=/nonexistent", "device=cuda"], "device=cuda"),  # before the checkpoint loads
    ("bench", ["encoder=tiny", "device=cuda:1"], "device=cuda:1"),
])
def test_cuda_without_a_gpu_is_named_in_the_hydra_commands(command, argv, setting, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, out, err = run(capsys, command, *argv, f"hydra.run.dir={tmp_path}")
    assert rc == 1
    assert one_line_error(err) == (f"sentibert {command}: error: {setting}: no CUDA device is available; "
                                   "use cpu or auto")


# ---- 14. damaged training checkpoints -------------------------------------------------------------------------
def train_config(*overrides: str):
    from hydra import compose, initialize_config_dir

    from sentibert.config import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[*TRAIN, *overrides])


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    """A run killed after step 3, with its checkpoint of step 2."""
    from sentibert.training import loop as train

    run_dir = tmp_path_factory.mktemp("stopped")
    assert train.train(train_config("trainer.limit_train_batches=null", "trainer.checkpoint_every_n_steps=2",
                                    "trainer.stop_after_steps=3"), run_dir) is None
    assert (run_dir / "checkpoints" / "latest").read_text() == "epoch0-step2"
    return run_dir


def resume(run_dir: Path, capsys):
    return run(capsys, "train", *TRAIN, "trainer.limit_train_batches=null", "trainer.checkpoint_every_n_steps=2",
               "resume=true", f"hydra.run.dir={run_dir}")


def test_latest_naming_a_missing_checkpoint_is_named(stopped_run, tmp_path, capsys):
    from sentibert.models.checkpoint import CheckpointError
    from sentibert.training import loop as train

    run_dir = shutil.copytree(stopped_run, tmp_path / "run")
    shutil.rmtree(run_dir / "checkpoints" / "epoch0-step2")
    pointer, missing = run_dir / "checkpoints" / "latest", run_dir / "checkpoints" / "epoch0-step2"
    with pytest.raises(CheckpointError, match=f"{pointer} names checkpoint 'epoch0-step2', but {missing} is not "
                                              f"there: restore that directory, or delete {pointer.parent}"):
        train.train(train_config("resume=true"), run_dir)
    rc, out, err = resume(run_dir, capsys)
    assert rc == 1
    one_line_error(err, str(pointer), str(missing), "restore")


@pytest.mark.parametrize("file", ["state.pt", "model.safetensors", "rng-0.pt"])
def test_a_truncated_training_checkpoint_names_the_file(file, stopped_run, tmp_path, capsys):
    run_dir = shutil.copytree(stopped_run, tmp_path / "run")
    damaged = run_dir / "checkpoints" / "epoch0-step2" / file
    damaged.write_bytes(damaged.read_bytes()[:len(damaged.read_bytes()) // 2])
    rc, out, err = resume(run_dir, capsys)
    assert rc == 1
    one_line_error(err, f"sentibert train: error: {damaged}: damaged or truncated", "restore the checkpoint")


# ---- 15. a full disk while checkpointing: tests/test_run_dir.py, test_a_full_disk_in_a_checkpoint_... ----------


# ---- 16. no network unless asked; the run's log file ------------------------------------------------------------
@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """A run through the CLI with the default logger, recording every host lookup and connection it tries."""
    import socket

    from sentibert.commands import train as train_command

    run_dir, calls = tmp_path_factory.mktemp("default-logger"), []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("no network in tests")

    overrides = [o for o in TRAIN if not o.startswith("logger=")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket, "create_connection", refuse)
        train_command.main([*overrides, f"hydra.run.dir={run_dir}"])
    return run_dir, calls


def test_the_default_logger_makes_no_network_call(default_run):
    run_dir, calls = default_run
    assert calls == []
    assert (run_dir / "log.csv").read_text().startswith("step,key,value\n")  # the default logger: csv


WANDB_PROBE = """
import atexit, socket, sys
calls = []
def refuse(*args, **kwargs):
    calls.append(repr(args))
    raise OSError("no network")
socket.getaddrinfo = refuse
socket.create_connection = refuse
atexit.register(lambda: print("NETWORK CALLS:", calls))  # registered first: runs after wandb's own exit hooks
sys.argv = ["train", *sys.argv[1:]]
from sentibert.commands import train
train.main()
"""


def test_wandb_offline_makes_no_network_call_even_at_exit(tmp_path):
    overrides = [o for o in TRAIN if not o.startswith("logger=")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}  # conftest disables wandb
    env.update(WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "config"),
               WANDB_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", WANDB_PROBE, *overrides, "logger=wandb",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "NETWORK CALLS: []" in done.stdout, done.stdout[-3000:]
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


def test_the_run_log_is_train_log(default_run):
    run_dir, _ = default_run
    assert "run directory" in (run_dir / "train.log").read_text()
    assert not list(run_dir.glob("config.log"))
