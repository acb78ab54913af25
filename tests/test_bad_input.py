"""Bad input is refused in one line that names the file and the fix, never silently mangled, never a traceback.

One group per case of the issue "Nothing silently wrong": line-exact reading, non-UTF-8 files, counts, devices,
closed stdin, corrupt zips, the parse cache, checkpoints that would run code, damaged checkpoints.
"""
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import transformers

from sentibert import cli, parse
from sentibert import predict as predict_module
from sentibert.model import SentiBERT, TreeSentimentModel
from sentibert.tree import BinaryTree, TreeFormatError, read_trees

transformers.logging.set_verbosity_error()


def right_branching(text: str) -> BinaryTree:
    def ptb(words):
        return f"(X {words[0]})" if len(words) == 1 else f"(X {ptb(words[:1])} {ptb(words[1:])})"

    return BinaryTree.from_ptb(ptb(text.split()))


class FakeParser:
    """Right-branching trees over whitespace tokens; records how it was loaded and what it parsed."""

    def __init__(self):
        self.calls, self.use_cache = [], None

    def load(self, model="auto", cache_dir=None, use_cache=True):
        self.use_cache = use_cache
        return self

    def parse(self, texts, source="input"):
        self.calls.append(list(texts))
        return [right_branching(text) for text in texts]


@pytest.fixture
def fake_parser(monkeypatch):
    parser = FakeParser()
    monkeypatch.setattr(predict_module, "load_parser", parser.load)
    monkeypatch.setattr(parse, "load_parser", parser.load)
    return parser


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return SentiBERT("tiny").save_pretrained(tmp_path_factory.mktemp("bad-input") / "checkpoint")


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
    from sentibert.transfer import LabelledTextError, read_labelled

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
    from sentibert.report import ReportError, read_predictions
    from sentibert.transfer import LabelledTextError, read_labelled

    shutil.copyfile(not_utf8, tmp_path / "data.tsv")
    with pytest.raises(LabelledTextError, match=f"data.tsv.*UTF-8"):
        read_labelled(tmp_path / "data.tsv")
    with pytest.raises(ReportError, match=f"{not_utf8.name}.*UTF-8"):
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
        predict_module.predict(["fine"], checkpoint, FakeParser(), batch_size=int(value))


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
    from sentibert.datasets import DataError, prepare

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
    from sentibert.encoder import CheckpointError

    file, edit = TAMPERING[tampering]
    directory = tamper(checkpoint, tmp_path / "tampered", file, edit)
    with pytest.raises(CheckpointError, match=str(directory / file)):
        TreeSentimentModel.from_pretrained(directory)
    rc, out, err = run(capsys, "predict", "--checkpoint", directory, "fine")
    assert rc == 1
    one_line_error(err, str(directory / file))
    assert not (tmp_path / "marker").exists()


def test_an_encoder_directory_that_would_run_code_is_refused(checkpoint, tmp_path):
    from sentibert.encoder import CheckpointError, load_tokenizer

    file, edit = TAMPERING["tokenizer auto_map"]
    directory = tamper(checkpoint, tmp_path / "encoder", file, edit)
    with pytest.raises(CheckpointError, match="auto_map"):
        load_tokenizer(str(directory))
    assert not (tmp_path / "marker").exists()


def test_every_transformers_load_refuses_remote_code():
    """No Auto*.from_pretrained / from_config call may leave trust_remote_code to transformers, which asks on stdin."""
    import re

    calls = 0
    for path in Path(predict_module.__file__).parent.glob("*.py"):
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
    from sentibert.encoder import CheckpointError

    file, edit = DAMAGE[damage]
    directory = shutil.copytree(checkpoint, tmp_path / "damaged")
    (directory / file).write_bytes(edit((directory / file).read_bytes()))
    with pytest.raises(CheckpointError, match=str(directory / file)):
        TreeSentimentModel.from_pretrained(directory)
    rc, out, err = run(capsys, "predict", "--checkpoint", directory, "fine")
    assert rc == 1
    one_line_error(err, str(directory / file))
