"""`predict()` and `sentibert predict` on a tiny random model: batching, formats, bad input, bad checkpoints."""
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import transformers
from fakes import RightBranchingParser

from sentibert import cli
from sentibert.inference import predict as predict_module
from sentibert.inference.predict import PredictError, load_network, predict
from sentibert.models.checkpoint import CheckpointError
from sentibert.models.model import MeanPool
from sentibert.parsing import parse

transformers.logging.set_verbosity_error()


TEXTS = ["not bad at all", "a dull , lifeless film", "great", "the story is awful but the actors are good",
         "it is not the worst film", "funny", "so bad", "one more film"]


def test_all_texts_are_parsed_in_one_call_and_the_model_runs_in_batches(checkpoint):
    model, parser = load_network(checkpoint), RightBranchingParser()
    forward_calls = []
    original_forward = model.forward
    model.forward = lambda batch, **kw: forward_calls.append(len(batch["input_ids"])) or original_forward(batch, **kw)
    predictions = predict(TEXTS, model, parser, batch_size=3)
    assert parser.calls == [TEXTS]
    assert forward_calls == [3, 3, 2]  # never one call per sentence
    assert [p.tree.tokens for p in predictions] == [tuple(t.split()) for t in TEXTS]
    for p in predictions:
        assert len(p.probs) == len(p.tree)
        for probs, label in zip(p.probs, p.labels):
            assert sum(probs) == pytest.approx(1, abs=1e-5) and label == max(range(5), key=probs.__getitem__)
        assert p.token_attention.shape[0] == p.child_attention.shape[0] == len(p.tree)


def test_a_checkpoint_path_or_a_training_run_directory_can_stand_for_the_model(checkpoint, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(checkpoint, run_dir / "best_model")
    expected = predict(["not bad"], load_network(checkpoint), RightBranchingParser())[0].probs
    assert predict(["not bad"], str(checkpoint), RightBranchingParser())[0].probs == expected
    assert predict(["not bad"], run_dir, RightBranchingParser())[0].probs == expected


@pytest.mark.parametrize("texts, message", [
    (["fine", "  \t"], "text:2: empty text"),
    ([], "no text to predict"),
    ("one string", "a list of strings"),
])
def test_empty_input_is_refused_before_anything_loads(texts, message):
    parser = RightBranchingParser()
    with pytest.raises(PredictError, match=message):
        predict(texts, model="/nonexistent", parser=parser)
    assert parser.calls == []


def test_a_sentence_over_the_encoder_limit_is_refused(checkpoint):
    with pytest.raises(PredictError, match=r"text:2: 202 wordpieces, more than the encoder's limit of 128"):
        predict(["fine", " ".join(["good"] * 200)], checkpoint, RightBranchingParser())


@pytest.mark.parametrize("text", ["\u200b", "\x01", "\u0301"], ids=["zero-width space", "control", "lone accent"])
def test_a_text_with_no_wordpieces_is_refused_by_name_alone_or_beside_others(checkpoint, text):
    for texts, n in (([text], 1), (["not bad at all", text, "great"], 2)):
        with pytest.raises(PredictError) as refused:
            predict(texts, checkpoint, RightBranchingParser())
        assert str(refused.value) == (f"text:{n}: {text!r}: the encoder reads no wordpieces in it (only invisible or "
                                      "control characters); remove them")  # not "the encoder truncated"


def test_a_phrase_with_no_wordpieces_is_named_in_its_text(checkpoint):
    with pytest.raises(PredictError, match=r"text:1: 'good \\x01 \\x01': the encoder reads no wordpieces in "
                                           r"'\\x01 \\x01' \(only"):
        predict(["good \x01 \x01"], checkpoint, RightBranchingParser())  # right-branching: (good (\x01 \x01))
    assert predict(["good \x01"], checkpoint, RightBranchingParser())[0].labels[0] is not None  # each phrase has a word


def test_cli_refuses_a_text_with_no_wordpieces_in_one_line(checkpoint, fake_parser, capsys):
    assert run_cli("--checkpoint", checkpoint, "fine", "\u200b") == 1
    err = capsys.readouterr().err
    assert err == ("sentibert predict: error: argument:2: '\\u200b': the encoder reads no wordpieces in it (only "
                   "invisible or control characters); remove them\n")


@pytest.mark.parametrize("remove, message", [
    ("directory", "neither a bundled model .* nor a directory"),
    ("config.json", "config.json is missing"),
    ("model.safetensors", "model.safetensors is missing"),
])
def test_a_broken_checkpoint_names_what_is_missing(checkpoint, tmp_path, remove, message):
    broken = tmp_path / "checkpoint"
    if remove != "directory":
        shutil.copytree(checkpoint, broken)
        (broken / remove).unlink()
    with pytest.raises((ValueError, OSError), match=message):  # CheckpointError, FileNotFoundError
        load_network(broken)


def test_weights_that_do_not_fit_the_model_class_are_named(tiny_model, tmp_path):
    checkpoint = shutil.copytree(tiny_model(MeanPool), tmp_path / "mean_pool")
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "model": "SentiBERT"}))
    with pytest.raises(CheckpointError, match=r"model.safetensors: its weights do not fit the model its config.json "
                                              r"describes \(Missing key.*composition.*copy or save the checkpoint"):
        load_network(checkpoint)


def test_emoji_entities_and_markup_come_through_as_typed_and_escaped(checkpoint):
    from sentibert.evaluation import render

    [prediction] = predict(["Tom &amp; Jerry 😀 <b>bold</b>"], checkpoint, RightBranchingParser())
    assert prediction.tree.tokens == ("Tom", "&amp;", "Jerry", "😀", "<b>bold</b>")
    page = render.to_html([prediction])
    assert "&amp;amp;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    assert json.loads(render.to_json_text([prediction]))[0]["tokens"][3] == "😀"


def test_models_without_attention_render_without_it(tiny_model):
    [prediction] = predict(["not bad at all"], tiny_model(MeanPool), RightBranchingParser())
    assert prediction.token_attention is None and prediction.child_attention is None
    assert len(prediction.labels) == 3


# ---- the command line ---------------------------------------------------------------------------------------------
def run_cli(*args):
    return cli.main(["predict", *map(str, args)])


def test_cli_text_json_html_and_png(checkpoint, fake_parser, tmp_path, capsys):
    assert run_cli("--checkpoint", checkpoint, "not bad at all", "great") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"# model: {checkpoint}", "# (label name  p(very negative) p(negative) p(neutral) "
                                                   "p(positive) p(very positive)) phrase"]
    assert lines[3].endswith(") not bad at all") and lines[4] == "  not" and lines[-1] == "  great"
    assert fake_parser.calls == [["not bad at all", "great"]]

    assert run_cli("--checkpoint", checkpoint, "--format", "json", "not bad at all") == 0
    [doc] = json.loads(capsys.readouterr().out)
    assert doc["tokens"] == ["not", "bad", "at", "all"] and len(doc["nodes"]) == 3 and "attention" in doc["nodes"][0]

    for name, start in (("trees.html", b"<!doctype html>"), ("trees.png", b"\x89PNG"), ("trees.json", b"[\n{")):
        assert run_cli("--checkpoint", checkpoint, "--out", tmp_path / name, "not bad at all") == 0  # suffix: format
        assert (tmp_path / name).read_bytes().startswith(start)


def test_cli_reads_a_file_or_stdin_and_names_an_empty_line(checkpoint, fake_parser, tmp_path, capsys, monkeypatch):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("not bad at all\ngreat\n", encoding="utf-8")
    assert run_cli("--checkpoint", checkpoint, "--in", reviews, "--format", "json") == 0
    assert [d["text"] for d in json.loads(capsys.readouterr().out)] == ["not bad at all", "great"]

    monkeypatch.setattr("sys.stdin", io.StringIO("so bad\n"))
    assert run_cli("--checkpoint", checkpoint, "--in", "-") == 0
    assert capsys.readouterr().out.splitlines()[3].endswith(") so bad")

    reviews.write_text("not bad at all\n \ngreat\n", encoding="utf-8")
    assert run_cli("--checkpoint", checkpoint, "--in", reviews) == 1
    assert f"sentibert predict: error: {reviews}:2: empty text" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_cli_errors(checkpoint, fake_parser, tmp_path, capsys, monkeypatch):
    assert run_cli("--checkpoint", tmp_path, "fine") == 1
    assert "config.json is missing" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", Terminal())  # nothing piped in: no sentences at all is a usage error
    for args in (["--in", tmp_path / "x.txt", "fine"], [], ["--format", "png", "fine"]):
        with pytest.raises(SystemExit) as exit_:
            run_cli("--checkpoint", checkpoint, *args)
        assert exit_.value.code == 2
    assert "png is an image: give --out FILE.png" in capsys.readouterr().err


def test_real_parser_end_to_end(checkpoint, tmp_path):
    """The bundled parser into the SentiBERT model."""
    try:
        parser = parse.Parser(parse.bundled_model(), cache_dir=tmp_path)
    except parse.ParserError as err:
        pytest.skip(str(err))
    predictions = predict(["Not bad at all.", "A dull, lifeless film."], checkpoint, parser)
    assert predictions[0].tree.tokens == ("Not", "bad", "at", "all", ".")
    assert all(None not in p.labels for p in predictions)


def test_piped_text_needs_no_flag_and_no_checkpoint_means_the_bundled_model(checkpoint, fake_parser, monkeypatch,
                                                                           capsys, tmp_path):
    from sentibert import bundles

    monkeypatch.setattr(sys, "stdin", io.StringIO("Not bad at all.\n"))
    assert run_cli("--checkpoint", checkpoint, "--format", "json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    monkeypatch.setitem(bundles.BUNDLES, "minilm", tmp_path / "nothing")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Not bad at all.\n"))
    assert run_cli() == 1
    assert "the minilm model is not bundled with this installation" in capsys.readouterr().err
    monkeypatch.setitem(bundles.BUNDLES, "minilm", Path(checkpoint))
    [prediction] = predict_module.predict(["Not bad at all."], parser=fake_parser)  # the Python API too
    assert prediction.model == "minilm"


def test_attentions_only_when_the_format_shows_them(checkpoint, fake_parser, monkeypatch):
    asked = []
    original = predict_module.predict
    monkeypatch.setattr("sentibert.commands.predict.predict",
                        lambda *args, **kwargs: asked.append(args[5]) or original(*args, **kwargs))
    for fmt in ("text", "json"):
        assert run_cli("--checkpoint", checkpoint, "--format", fmt, "not bad") == 0
    assert asked == [False, True]
    assert predict(["not bad"], checkpoint, RightBranchingParser(), attentions=False)[0].token_attention is None
    assert predict(["not bad"], checkpoint, RightBranchingParser())[0].token_attention is not None


def test_timings_on_request_only(checkpoint, fake_parser, capsys):
    assert run_cli("--checkpoint", checkpoint, "not bad") == 0
    assert capsys.readouterr().err == ""
    assert run_cli("--checkpoint", checkpoint, "--timings", "not bad") == 0
    line = capsys.readouterr().err.strip()
    assert line.startswith("timings: ")
    phases = dict(item.split("=") for item in line.split()[1:])
    assert phases.keys() == {"load", "parse", "model", "render"} and all(float(s) >= 0 for s in phases.values())


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    from sentibert import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert precision.resolve("auto", cpu) == "32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.resolve("auto", cpu) == "bf16" and precision.resolve("32", cpu) == "32"
    with pytest.raises(ValueError, match="choose from"):
        precision.resolve("int8", cpu)
