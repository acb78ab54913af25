"""Models by name (sentibert.bundles): predict, serve and evaluate take the same names, the Python API loads them in
three lines, and a damaged checkpoint gets one line naming its file in every command that reads it."""
import json
import logging
import runpy
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers
from fakes import RightBranchingParser

from sentibert import bundles, cli
from sentibert.bundles import BUNDLES, DEFAULT_MODEL
from sentibert.config import SAMPLE_DATA_DIR
from sentibert.data.labels import SST3_NAMES, SST5_NAMES
from sentibert.inference import predict as predict_module

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def three_class(tiny_model):
    """A bundle-like model: LoRA adapters, composition and head only (trainable_only, float16), 3 classes."""
    return tiny_model(num_classes=3, lora_rank=2, trainable_only=True, dtype=torch.float16)


def without_encoder(directory, tmp_path):
    """A copy of a trainable-only checkpoint over the mpnet encoder, which tests never have installed."""
    copy = shutil.copytree(directory, tmp_path / "over-mpnet")
    config = json.loads((copy / "config.json").read_text())
    config["kwargs"]["encoder"] = "mpnet"
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def predict_json(capsys, *args) -> list[dict]:
    assert cli.main(["predict", "--format", "json", *args, "not bad at all"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


# ---- names ---------------------------------------------------------------------------------------------------------
def test_the_bundles_live_in_the_package_and_minilm_is_the_default():
    assert DEFAULT_MODEL == "minilm" and set(BUNDLES) == {"minilm", "mpnet"}
    assert BUNDLES["minilm"].name == "sentibert" and BUNDLES["minilm"].parent.name == "resources"
    assert BUNDLES["mpnet"].parent == BUNDLES["minilm"].parent
    if (BUNDLES["minilm"] / "config.json").is_file():
        assert "minilm" in bundles.installed_bundles()


def test_predict_takes_a_bundle_name_a_directory_or_the_old_checkpoint_flag(checkpoint, three_class, fake_parser,
                                                                            monkeypatch, capsys):
    monkeypatch.setitem(BUNDLES, "mpnet", three_class)
    [by_name] = predict_json(capsys, "--model", "mpnet")
    assert by_name["model"] == "mpnet" and by_name["label_names"] == list(SST3_NAMES)
    [by_dir] = predict_json(capsys, "--model", str(checkpoint))
    [old_flag] = predict_json(capsys, "--checkpoint", str(checkpoint))
    assert by_dir == old_flag and by_dir["model"] == str(checkpoint) and by_dir["label_names"] == list(SST5_NAMES)
    monkeypatch.setitem(BUNDLES, "minilm", checkpoint)
    [default] = predict_json(capsys)
    assert default["model"] == "minilm" and default["nodes"] == by_dir["nodes"]

    assert cli.main(["predict", "--format", "text", "--model", "mpnet", "not bad"]) == 0
    assert capsys.readouterr().out.startswith("# model: mpnet\n# (label name  p(negative) p(neutral) p(positive))")
    assert cli.main(["predict", "--model", "nosuch", "not bad"]) == 1
    assert capsys.readouterr().err == ("sentibert predict: error: nosuch: neither a bundled model (minilm, mpnet) nor a "
                                       "directory: give a model saved with save_pretrained, such as a training run's "
                                       "best_model/\n")


def test_a_missing_bundle_or_its_missing_encoder_is_one_line(three_class, fake_parser, monkeypatch, tmp_path,
                                                             capsys):
    monkeypatch.setitem(BUNDLES, "mpnet", tmp_path / "not-here")
    assert cli.main(["predict", "--model", "mpnet", "not bad"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"sentibert predict: error: the mpnet model is not bundled with this installation (no {tmp_path / 'not-here'}):"
        f" use {' or '.join(bundles.installed_bundles()) or 'a checkpoint directory'}"]
    monkeypatch.setitem(BUNDLES, "mpnet", without_encoder(three_class, tmp_path))
    assert cli.main(["predict", "--model", "mpnet", "not bad"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("sentibert predict: error: model 'mpnet' needs its encoder: encoder 'mpnet' is not installed")
    assert line.endswith("install it with: sentibert encoder install mpnet")


def test_evaluate_takes_the_same_names(three_class, monkeypatch, tmp_path):
    monkeypatch.setitem(BUNDLES, "mpnet", three_class)
    out = tmp_path / "evaluate"
    assert cli.main(["evaluate", "checkpoint=mpnet", "data=fixture", f"data.root={SAMPLE_DATA_DIR}",
                     "data.label_view=sst3", "device=cpu", f"hydra.run.dir={out}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["checkpoint"] == str(three_class.resolve()) and 0 <= metrics["sst3_root_acc"] <= 1
    assert json.loads((out / "test_predictions.jsonl").read_text().splitlines()[0])["label_names"] == list(SST3_NAMES)


def test_the_served_page_switches_models_and_each_answer_names_its_model(checkpoint, three_class, monkeypatch,
                                                                         tmp_path):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from sentibert.inference import app as serve

    monkeypatch.setitem(BUNDLES, "minilm", tmp_path / "absent")  # this installation: the mpnet bundle alone
    monkeypatch.setitem(BUNDLES, "mpnet", three_class)
    started = predict_module.Pipeline(predict_module.load_network(checkpoint), RightBranchingParser())
    with TestClient(serve.create_app(started)) as client:
        assert client.get("/api/health").json()["models"] == [str(checkpoint), "mpnet"]
        assert (f'<select id="model"><option selected>{checkpoint}</option><option>mpnet</option></select>'
                in client.get("/").text)
        [default] = client.post("/api/predict", json={"text": "not bad"}).json()
        assert default["model"] == str(checkpoint) and default["label_names"] == list(SST5_NAMES)
        [switched] = client.post("/api/predict", params={"render": "html"},
                                 json={"text": "not bad", "model": "mpnet"}).json()
        assert switched["model"] == "mpnet" and switched["label_names"] == list(SST3_NAMES)
        assert all(len(node["probs"]) == 3 for node in switched["nodes"]) and "2 positive" in switched["legend"]
        assert client.post("/api/predict", json={"text": "not bad"}).json()[0]["model"] == str(checkpoint)

    monkeypatch.setitem(BUNDLES, "mpnet", without_encoder(three_class, tmp_path))
    with TestClient(serve.create_app(started)) as client:
        response = client.post("/api/predict", json={"text": "not bad", "model": "mpnet"})
        assert response.status_code == 422
        assert response.json()["error"].startswith("model 'mpnet' needs its encoder: encoder 'mpnet' is not installed")
        assert client.post("/api/predict", json={"text": "not bad"}).status_code == 200  # still serving


# ---- the Python API ------------------------------------------------------------------------------------------------
def loading_messages(load) -> tuple[object, str]:
    """What `load()` returns, and every warning and transformers log line it raised."""
    records, logger = [], logging.getLogger("transformers")
    handler = logging.Handler()
    handler.emit = records.append
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()  # other test modules silence it
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = load()
    finally:
        logger.removeHandler(handler)
        transformers.logging.set_verbosity(verbosity)
    return loaded, "\n".join([str(w.message) for w in caught] + [r.getMessage() for r in records])


def test_three_lines_from_python_with_the_bundled_model_and_no_loading_warnings(capfd):
    if not (BUNDLES["minilm"] / "config.json").is_file():
        pytest.skip("no bundled model in this installation")

    def three_lines():
        from sentibert import load_model
        model = load_model("minilm")
        return model, model.predict(["Not bad at all."])

    (model, trees), messages = loading_messages(three_lines)
    for unwanted in ("not used", "newly initialized", "UNEXPECTED", "MISSING"):
        assert unwanted not in messages + capfd.readouterr().err
    [tree] = trees
    assert model.name == "minilm" and tree.model == "minilm" and tree.label_names == SST5_NAMES == model.label_names
    assert tree.tree.tokens == ("Not", "bad", "at", "all", ".") and len(tree.labels) == len(tree.tree)
    for probs, label in zip(tree.probs, tree.labels):
        assert len(probs) == 5 and sum(probs) == pytest.approx(1, abs=1e-4) and probs[label] == max(probs)


def test_loading_the_bundled_model_draws_no_progress_bar_and_leaves_the_users_bars_alone(capfd):
    if not (BUNDLES["minilm"] / "config.json").is_file():
        pytest.skip("no bundled model in this installation")
    hf_logging = transformers.utils.logging
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()  # on, as in a fresh process
    try:
        capfd.readouterr()
        predict_module.load_model("minilm", parser="bundled")  # the model's encoder and the parser's
        assert capfd.readouterr().err == ""  # transformers 5.x drew "Loading weights: 100%|..." twice
        for _ in hf_logging.tqdm(range(2), desc="a bar of the user's own"):
            pass
        assert "a bar of the user's own" in capfd.readouterr().err  # silenced during our loads only
    finally:
        (hf_logging.enable_progress_bar if was_enabled else hf_logging.disable_progress_bar)()


def test_load_model_takes_a_run_directory_too(three_class, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(three_class, run / "best_model")
    model, messages = loading_messages(lambda: predict_module.load_model(run, parser="bundled"))
    assert "not used" not in messages + capfd.readouterr().err and "newly initialized" not in messages
    model.parser = RightBranchingParser()
    [tree] = model.predict(["not bad at all"])
    assert model.label_names == SST3_NAMES and tree.label_names == SST3_NAMES and tree.model == str(run)
    assert all(len(probs) == 3 for probs in tree.probs)


# ---- a damaged checkpoint: one line naming the file, in predict, evaluate and serve ----------------------------
def unknown_kwarg(directory):
    config = json.loads((directory / "config.json").read_text())
    config["kwargs"]["colour"] = "blue"
    (directory / "config.json").write_text(json.dumps(config))


def no_classes(directory):
    config = json.loads((directory / "config.json").read_text())
    config["kwargs"]["num_classes"] = 0
    (directory / "config.json").write_text(json.dumps(config))


def other_shapes(directory):
    config = json.loads((directory / "config.json").read_text())
    config["encoder_config"]["hidden_size"] = 48  # the weights are 32 wide
    (directory / "config.json").write_text(json.dumps(config))


def damaged_tokenizer(directory):
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    del tokenizer["added_tokens"]
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer))


DAMAGE = {  # damage -> (the file the error names, what it says)
    unknown_kwarg: ("config.json", "kwargs has 'colour', which SentiBERT does not take"),
    no_classes: ("config.json", "num_classes is 0, not a class count of 2 or more"),
    other_shapes: ("model.safetensors", "its weights do not fit the model its config.json describes"),
    damaged_tokenizer: ("tokenizer.json", "the tokenizer cannot be loaded (KeyError: 'added_tokens')"),
}


@pytest.mark.parametrize("command", ["predict", "evaluate", "serve"])
@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__ for d in DAMAGE])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(checkpoint, fake_parser, no_full_error, command, damage,
                                                          monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: pytest.fail("the server must not start"))
    damaged = shutil.copytree(checkpoint, tmp_path / "damaged")
    damage(damaged)
    argv = {"predict": ["predict", "--model", str(damaged), "not bad"],
            "serve": ["serve", "--model", str(damaged)],
            "evaluate": ["evaluate", f"checkpoint={damaged}", "data=fixture", f"data.root={SAMPLE_DATA_DIR}",
                         f"hydra.run.dir={tmp_path / 'evaluate'}"]}[command]
    try:
        assert cli.main(argv) == 1
    except SystemExit as exit_:  # the Hydra command exits with its status
        assert exit_.code == 1
    [line] = capsys.readouterr().err.splitlines()
    name, message = DAMAGE[damage]
    assert line.startswith(f"sentibert {command}: error: {damaged / name}: {message}"), line
    assert "copy or save" in line or "remove it" in line  # the fix


# ---- the bundler's model card (experiments/bundled_model/bundle.py) ------------------------------------------------
@pytest.fixture(scope="module")
def bundler():
    script = Path(__file__).resolve().parents[1] / "experiments" / "bundled_model" / "bundle.py"
    return SimpleNamespace(**runpy.run_path(str(script), run_name="bundle"))


def test_the_model_cards_prose_is_wrapped_whole_words_whatever_its_numbers(bundler):
    results = {"campaign": {"group": "minilm-lora", "seed": 1, "lr": 0.001, "commit": "1e37e22"}, "best_epoch": 4,
               "test": {"phrase_acc": 0.6577, "sst5_root_acc": 0.5145, "sst3_from_5class_root_acc": 0.7312,
                        "contrast": {"acc": 0.3625}}}
    config = {"model": {"lora_rank": 16, "lora_targets": "all-linear"}, "trainer": {"precision": "32", "max_epochs": 5}}
    scores = {"dev": {**results["test"], "phrase_acc": 0.659, "contrast": {"n": 151, "acc": 0.3623}},
              "test": {**results["test"], "contrast": {"n": 160, "acc": 0.3625}}}
    overrides = ("experiment=sst_phrase", "model=sentibert_lora", "model.lora_targets=all-linear")
    for grid in ("lr 1e-03: 65.90", ", ".join(f"lr {k}e-04: pending" for k in range(1, 10))):  # short and long
        text = bundler.card("minilm", "minilm-lora-lr1e-03-s1", results, config, scores, 7_670_000, overrides, grid)
        prose = [line for line in text.splitlines() if not line.startswith("|")]
        assert max(map(len, prose)) <= 120
        bullets = "\n".join(prose).split("\n\n")[1]
        assert [line[:line.index(":**")] for line in bullets.splitlines() if not line.startswith("  ")] == [
            "- **Model", "- **Data", "- **Training", "- **Files"]  # the rest of each bullet is indented under it
        words = " ".join(text.split())
        for phrase in ("on all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters), encoder frozen, "
                       "LoRA adapters of rank 16 on `all-linear`;",
                       f"(dev phrase accuracy when bundled: {grid}), test (2210) read once",
                       "trainer.lr=0.001` (5 epochs, batch 32,",
                       "`sentibert train experiment=sst_phrase model=sentibert_lora model.lora_targets=all-linear "
                       "seed=1 trainer.lr=0.001`", "precision 32), code commit `1e37e22`; selected epoch 4.",
                       "7.67 MB (7.31 MiB)", "(limit 10.0 MB)"):
            assert phrase in words
        assert "| SST-phrase | 65.90 | 65.77 | 65.77 |\n" in text
        assert "| contrast (n=160) | 36.23 | 36.25 | 36.25 |" in text


def test_the_cards_grid_gives_each_candidate_its_best_dev_or_pending(bundler, tmp_path):
    """The lr grid that gave the bundle's group its lr, then the variants at that lr (lr_from it): what dev chose
    among. Another grid is not a candidate."""
    from sentibert.campaign.spec import load_campaign

    (tmp_path / "campaign.yaml").write_text("""\
groups:
  - {group: lora, task: sst_phrase, model: sentibert, encoder: minilm, variant: LoRA r16,
     overrides: [experiment=sst_phrase], lr_grid: [2.0e-4, 1.0e-3], seeds: [1, 2]}
  - {group: r32, task: sst_phrase, model: sentibert, encoder: minilm, variant: LoRA r32,
     overrides: [experiment=sst_phrase], lr_from: lora, seeds: [1, 2]}
  - {group: other, task: sst_phrase, model: sentibert, encoder: minilm, variant: other,
     overrides: [experiment=sst_phrase], lr_grid: [5.0e-4], seeds: [1]}
""")
    campaign = load_campaign(tmp_path / "campaign.yaml")
    for run, dev in (("lora-lr2e-04-s1", 0.6572), ("r32-s1", 0.6601), ("r32-s2", 0.5), ("other-lr5e-04-s1", 0.7)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "metrics.json").write_text(json.dumps({"best_dev": dev}))
    expected = "lr 2e-04: 65.72, lr 1e-03: pending, LoRA r32: 66.01"
    assert bundler.grid_state(campaign, "lora", tmp_path) == expected
    assert bundler.grid_state(campaign, "r32", tmp_path) == expected
