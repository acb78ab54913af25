"""`sentibert <command>`: dispatch, unknown commands, the layout rule (thin commands over one library), `sentibert
parser info|download` (offline: download fails cleanly), and that a Hydra command gives sys.argv back."""
import ast
import importlib
import socket
import sys
from pathlib import Path

import pytest

from sentibert import cli

PACKAGE = Path(cli.__file__).parent


def test_no_arguments_or_help_print_the_commands(capsys):
    for argv in ([], ["--help"], ["help"]):
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: sentibert <command>") and all(f"  {name} " in out for name in cli.COMMANDS)


def test_an_unknown_command_is_refused_with_the_list(capsys):
    assert cli.main(["trian", "experiment=sst_phrase"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("sentibert: unknown command 'trian'\n") and "  train " in err


def test_every_command_is_a_function_of_its_own_module():
    for name, (target, _) in cli.COMMANDS.items():
        module, func = target.split(":")
        assert module.startswith("sentibert.commands."), name
        assert callable(getattr(importlib.import_module(module), func)), target


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_commands_import_no_other_command_and_the_library_no_command():
    commands = {p.stem for p in (PACKAGE / "commands").glob("*.py") if p.stem != "__init__"}
    for path in (PACKAGE / "commands").glob("*.py"):
        imported = {n.split(".")[2] for n in _imports(path) if n.startswith("sentibert.commands.")}
        assert not (imported & commands) - {path.stem}, f"{path.name} imports another command"
        assert not {n for n in _imports(path) if n.startswith("sentibert.cli")}, path.name
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name != "commands" and path.name != "cli.py":
            assert not {n for n in _imports(path) if n.startswith(("sentibert.commands", "sentibert.cli"))}, path


def test_a_hydra_command_gives_sys_argv_back(capsys):
    from sentibert.commands import train

    saved = sys.argv
    assert train.main(["--cfg", "job", "encoder=tiny", "data=fixture"]) == 0
    assert sys.argv is saved
    assert "_target_: sentibert.models.model.SentiBERT" in capsys.readouterr().out


# ---- sentibert parser ---------------------------------------------------------------------------------------------
@pytest.fixture
def no_stanza_models(tmp_path, monkeypatch):
    monkeypatch.setattr("sentibert.parsing.parse.stanza_resources_dir", lambda: tmp_path)
    monkeypatch.setattr("sentibert.commands.parse.stanza_resources_dir", lambda: tmp_path)
    return tmp_path


def test_parser_info_names_the_models(no_stanza_models, capsys):
    from sentibert.parsing.parse import BUNDLED_DIR

    assert cli.main(["parser", "info"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"official Stanza models: not installed in {no_stanza_models}"
    assert out[1] == f"bundled model: {BUNDLED_DIR}"
    assert out[2].startswith("in use: bundled-") and f" at {BUNDLED_DIR} (cache key " in out[2]


def test_parser_download_fails_cleanly_offline(no_stanza_models, monkeypatch, capsys):
    import stanza

    def refuse(*args, **kwargs):
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    asked = []

    def download(lang, **kwargs):
        asked.append((lang, kwargs))
        raise ConnectionError("Name or service not known")  # what requests raises without a network

    monkeypatch.setattr(stanza, "download", download)
    assert cli.main(["parser", "download"]) == 1
    out, err = capsys.readouterr()
    assert asked == [("en", {"processors": "tokenize,pos,constituency"})]
    assert err == ("sentibert parser: error: could not download the Stanza English models (Name or service not known)"
                   ". This needs a network; the bundled parser works without them.\n")
    assert out == ""


def test_parser_rejects_an_unknown_action(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["parser", "upgrade"])
    assert exit_.value.code == 2 and "invalid choice: 'upgrade'" in capsys.readouterr().err
