"""Atomic publishing: a reader sees the old file or folder or the whole new one, never a mix, and a
killed writer's leftovers are removed by the next writer of the same target.

- A file is written to a temp file beside it, fsynced and renamed over it (`atomic_write`).
- A folder is built in a staging folder beside it and swapped in with one `renameat2(RENAME_EXCHANGE)`
  (Linux): the target name always holds a complete folder, old or new. Where the kernel or file
  system cannot exchange, the old folder is first renamed aside; a kill between that and the second
  rename leaves the old one aside, and the next writer puts it back (`publish_dir`).
- Every temp name holds its writer's PID (`.NAME.KIND-PID-RANDOM.tmp`): a later writer removes
  those whose process no longer runs (`remove_stale`).
- New files and folders get the usual permissions (0666/0777 less the umask), not mkstemp's 0600;
  a replaced file keeps its mode.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import WriteError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_name(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def stale(target: Path, kind: str) -> list[Path]:
    """Temp paths of `kind` for `target` whose writing process is gone."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.{re.escape(kind)}-(\d+)-[0-9a-f]+\.tmp$")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    return sorted(target.parent / n for n in names
                  if (m := pattern.match(n)) and not _pid_alive(int(m.group(1))))


def remove_stale(target: Path, kind: str) -> list[Path]:
    removed = []
    for p in stale(target, kind):
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p)
        except OSError:
            pass  # another writer got there first, or it is not ours to remove
    return removed


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(path: Path, e: OSError) -> WriteError:
    return WriteError(f"cannot write {path}: {e.strerror or e}")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temp path beside `path` for a writer that needs a file name (h5py); on success it
    is fsynced and renamed over `path`, on any failure removed."""
    path = Path(path)
    remove_stale(path, "write")
    tmp = temp_name(path, "write")
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        os.chmod(tmp, mode)  # exactly the old file's mode, whatever the umask
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Calls write(f) on a temp file beside `path`, fsyncs it, then renames it over `path`."""
    with atomic_path(path) as tmp, open(tmp, "r+b") as f:
        write(f)
        f.flush()


def write_atomic(path: str | Path, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    atomic_write(path, lambda f: f.write(raw))


# --------------------------------------------------------------------------------------------------
# Folders


def staging_dir(target: Path) -> Path:
    """A new empty folder beside `target` to build its next version in (normal permissions);
    first removes staging folders of `target` left by killed processes, and puts back a previous
    version that a killed fallback publish left aside."""
    target = Path(target)
    _recover(target)
    remove_stale(target, "staging")
    path = temp_name(target, "staging")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o777)  # the umask applies, as for any folder
    except OSError as e:
        raise WriteError(f"cannot write to {target.parent} ({e.strerror or e})") from None
    return path


def _recover(target: Path) -> None:
    aside = stale(target, "old")
    if aside and not os.path.lexists(target):
        try:
            os.rename(aside[-1], target)
        except OSError:
            pass
    remove_stale(target, "old")


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2). False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False  # glibc before 2.28, or another libc
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # a file system that cannot exchange
    raise OSError(err, os.strerror(err), str(b))


def publish_dir(staging: Path, target: Path, discard: Callable[[Path], None] = shutil.rmtree) -> None:
    """Put the finished `staging` folder at `target`. A previous `target` is swapped out in the same
    step and then passed to `discard` (which must remove only what the caller owns)."""
    staging, target = Path(staging), Path(target)
    try:
        if not os.path.lexists(target):
            try:
                os.rename(staging, target)
                _fsync_dir(target.parent)
                return
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # created meanwhile by another writer: swap it out like any previous version
        if _exchange(staging, target):
            old = staging  # the name now holds the previous version
        else:
            old = _publish_by_renames(staging, target)
        _fsync_dir(target.parent)
    except OSError as e:
        raise _write_error(target, e) from None
    discard(old)


def _publish_by_renames(staging: Path, target: Path) -> Path:
    """The fallback: previous version aside (named as this process's), new one in. A kill between
    the renames leaves no `target`; `_recover` puts the previous version back."""
    old = temp_name(target, "old")
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def publish_files(staging: Path, target: Path, last: tuple[str, ...] = ()) -> None:
    """Move each file of `staging` into the existing folder `target`, each atomically (other files
    of `target` stay; the set is not swapped as one). Names in `last` go last."""
    names = sorted(os.listdir(staging), key=lambda n: (n in last, n))
    try:
        for name in names:
            os.replace(staging / name, target / name)
        os.rmdir(staging)
        _fsync_dir(target)
    except OSError as e:
        raise _write_error(target, e) from None


@contextlib.contextmanager
def scratch_dir(name: str, parent: str | Path | None = None):
    """A private working folder (under $TMPDIR by default), removed afterwards; those of `name`
    left by killed processes are removed first."""
    import tempfile

    anchor = Path(parent or tempfile.gettempdir()) / name
    remove_stale(anchor, "work")
    path = temp_name(anchor, "work")
    os.mkdir(path, 0o700)  # scratch only: nobody else needs to read it
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
