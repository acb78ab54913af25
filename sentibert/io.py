r"""File I/O. Atomic writes: a crash never leaves a half-written file behind (temp file + rename). Line-exact
reads: a text file is UTF-8, and its lines are separated by \n alone, so one line is one record."""
from __future__ import annotations

import codecs
import errno
import fcntl
import json
import logging
import os
import re
import socket
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)`, then rename the temp file over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; give them the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def wrapped_os_error(err: Exception, path: str | Path) -> OSError:
    """The OSError inside a library's own write error (safetensors': "... (os error 28)"), naming `path`: a full disk
    then reads as Python's own OSError does."""
    code = re.search(r"os error (\d+)", str(err))
    number = int(code[1]) if code else errno.EIO
    return OSError(number, os.strerror(number), str(path))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def cache_root() -> Path:
    """Where downloads and caches live: $SENTIBERT_CACHE, else ~/.cache/sentibert (an empty $SENTIBERT_CACHE counts as
    unset). Under it: encoders/ (sentibert.models.encoder) and parses/ (sentibert.parsing.parse)."""
    return Path(os.environ.get("SENTIBERT_CACHE") or Path.home() / ".cache" / "sentibert")


# ---- reading text ---------------------------------------------------------------------------------------------
class TextFileError(ValueError):
    """Text that cannot be read as UTF-8 lines; the message names the file (and line) and the fix."""

    def __init__(self, reason: str, source: str, line: int | None = None):
        super().__init__(f"{source}:{line}: {reason}" if line else f"{source}: {reason}")
        self.reason, self.source, self.line = reason, source, line


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 bytes -> text (a leading byte-order mark dropped); anything else is a TextFileError naming the line
    and byte offset. NUL bytes are refused too: they are valid UTF-8 but mean a binary (or UTF-16) file."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TextFileError("UTF-16 text, not UTF-8; save it as UTF-8", source)
    nul = data.find(b"\0")
    if nul >= 0:
        raise TextFileError(f"NUL byte at offset {nul}: a binary file, not UTF-8 text", source,
                            data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise TextFileError(f"not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); save it as UTF-8",
                            source, data.count(b"\n", 0, err.start) + 1) from None


def split_lines(text: str) -> list[str]:
    r"""Lines split on \n only, a trailing \r stripped. Not str.splitlines(), which also splits on \f, \x1c-\x1e,
    \x85, U+2028 and U+2029: one line would become several records and line numbers would drift."""
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline ends the last line; it does not start another
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (see `split_lines`); TextFileError if it is not UTF-8 text."""
    return split_lines(decode_text(Path(path).read_bytes(), str(path)))


def read_stdin_lines() -> list[str]:
    """stdin's lines. Empty stdin (`< /dev/null`) has none; a closed one (`<&-`) is a TextFileError."""
    if sys.stdin is None:  # Python's stdin when fd 0 is closed
        raise TextFileError("closed; pipe the text in, or give --in FILE", "<stdin>")
    buffer = getattr(sys.stdin, "buffer", None)  # bytes, to name a bad byte; tests may give a StringIO
    try:
        return split_lines(decode_text(buffer.read(), "<stdin>") if buffer else sys.stdin.read())
    except OSError as err:
        raise TextFileError(f"cannot read it ({err.strerror or err}); pipe the text in, or give --in FILE",
                            "<stdin>") from None


# ---- one process at a time ------------------------------------------------------------------------------------
class LockHeld(RuntimeError):
    """Another process holds a lock file; the message names it (pid, host) and the file."""


@contextmanager
def process_lock(path: str | Path, what: str, fix: str) -> Iterator[None]:
    """Hold the lock file `path` while the block runs, or raise LockHeld: "<what> is in use by process <pid> on
    <host> (<path>): <fix>". The lock is an flock, which the kernel drops when the process ends however it ends, so
    a file left by a process that is gone is taken over; the file names its holder for whoever finds it held. On a
    file system without locks (Lustre mounted without flock) the block runs unlocked, with a warning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            pid, _, host = file.read().strip().partition(" ")
            raise LockHeld(f"{what} is in use by process {pid or '?'} on {host or 'this machine'} ({path}): "
                           f"{fix}") from None
        except OSError as err:
            log.warning("%s cannot be locked (%s): going on without the lock", path, err.strerror or err)
            yield
            return
        file.truncate(0)
        file.write(f"{os.getpid()} {socket.gethostname()}\n")
        file.flush()
        try:
            yield
        finally:
            file.truncate(0)  # not removed: another process may have it open, waiting to take it
