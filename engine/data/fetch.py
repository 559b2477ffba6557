"""The standard image sets, fetched on request: `dllab data get mnist|fashion-mnist|cifar10`.

Only `dllab data get` calls this (and tests/test_fetch.py, against a server on 127.0.0.1): a run,
a preset or the default test run never downloads. Each file is written to ``<file>.part``, resumed
with an HTTP Range request when a part is there (started over when the server ignores the range),
checked against its md5 and then renamed into place. The MNIST files stay gzipped (the loaders
read ``.gz``); CIFAR-10's archive is unpacked (regular files under its one folder only, through
``tarfile``'s data filter), its batches checked against their md5s, and the archive removed. The
folders are the ones the loaders look in (``engine.data.images``), under the data folder
(``engine.paths.default_data_folder``: ``$DLLAB_DATA``, else ``$DLLAB_HOME/data``).

Where the URLs and md5s come from (torchvision's lists, github.com/pytorch/vision):

* MNIST: ``torchvision/datasets/mnist.py``, ``MNIST.mirrors`` (the ossci-datasets S3 copy; the
  first mirror, yann.lecun.com, no longer serves the files) and ``MNIST.resources``.
* Fashion-MNIST: the same file, ``FashionMNIST.mirrors`` and ``FashionMNIST.resources`` (Zalando's
  S3 site, the one github.com/zalandoresearch/fashion-mnist links to).
* CIFAR-10: ``torchvision/datasets/cifar.py``, ``CIFAR10.url``, ``tgz_md5`` and the batches' md5s
  (``train_list``, ``test_list``); the set's page is https://www.cs.toronto.edu/~kriz/cifar.html.

``$DLLAB_DATA_MIRROR`` (or ``mirror=``) fetches every file from ``<mirror>/<set>/<file>`` instead.
Progress goes to a callback (:class:`Progress`); this module prints nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from engine.paths import default_data_folder

MIRROR_ENV = "DLLAB_DATA_MIRROR"
CHUNK = 1 << 16
TIMEOUT_S = 30.0
"""Seconds without a byte from the server before a try fails."""
RETRIES = 2
"""Tries after the first when the connection fails or closes early; each resumes where it stopped."""
PART = ".part"


@dataclass(frozen=True)
class Remote:
    """One file to download and its md5."""

    url: str
    md5: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    """A set `dllab data get` fetches: its files, the folder they go to under the data folder, and
    for an archive, the folder it holds and the md5s of the files the loader reads from it."""

    name: str
    """What `dllab data get` takes."""
    dataset: str
    """The name a recipe's ``data.name`` gives it."""
    folder: str
    files: tuple[Remote, ...]
    unpack: str | None = None
    """A .tar.gz's top folder, unpacked next to it (the archive is removed once it is)."""
    members: Mapping[str, str] = field(default_factory=dict)
    """Files inside ``unpack`` the loader needs, with their md5s."""
    about: str = ""


_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_CIFAR10 = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

SOURCES: dict[str, Source] = {
    "mnist": Source(
        "mnist", "mnist", "mnist",
        (Remote(_MNIST + "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
         Remote(_MNIST + "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
         Remote(_MNIST + "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
         Remote(_MNIST + "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")),
        about="MNIST handwritten digits, 4 IDX files (11 MB)",
    ),
    "fashion-mnist": Source(
        "fashion-mnist", "fashion_mnist", "fashion-mnist",
        (Remote(_FASHION + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
         Remote(_FASHION + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
         Remote(_FASHION + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
         Remote(_FASHION + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")),
        about="Fashion-MNIST clothing images, 4 IDX files (30 MB)",
    ),
    "cifar10": Source(
        "cifar10", "cifar10", "cifar10",
        (Remote(_CIFAR10, "c58f30108f718f92721af3b95e74349a"),),
        unpack="cifar-10-batches-py",
        members={"data_batch_1": "c99cafc152244af753f735de768cd75f",
                 "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                 "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
                 "data_batch_4": "634d18415352ddfa80567beed471001a",
                 "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
                 "test_batch": "40351d587109b95175f43aff81a1287e"},
        about="CIFAR-10 colour images, the python batches (163 MB)",
    ),
}


class FetchError(RuntimeError):
    """A download that did not complete (the network, the server, a checksum), said for a person."""


class ChecksumError(FetchError):
    """A file whose md5 is not the published one (it is deleted)."""


class DataFolderError(FetchError):
    """A data folder that cannot be created or written."""


class UnknownSetError(ValueError):
    """A name `dllab data get` does not know."""


Stage = Literal["download", "verify", "unpack", "have", "done"]


@dataclass(frozen=True)
class Progress:
    """Where a fetch stands: ``download`` (``done`` of ``total`` bytes, ``total`` None when the
    server does not say; ``resumed``: the bytes a resumed download started from), ``verify``,
    ``unpack``, ``done`` (the file is in place), ``have`` (it was already, checksum matching)."""

    file: str
    stage: Stage
    done: int = 0
    total: int | None = None
    resumed: int = 0


ProgressFn = Callable[[Progress], None]


def source(name: str, sources: Mapping[str, Source] | None = None) -> Source:
    """The set called `name` (``fashion_mnist`` as the recipes spell it works too)."""
    table = SOURCES if sources is None else sources
    key = name.strip().lower().replace("_", "-")
    if key not in table:
        raise UnknownSetError(f"unknown data set {name!r}; choose one of {', '.join(table)}")
    return table[key]


def set_folder(src: Source, root: str | os.PathLike[str] | None = None) -> Path:
    """Where `src`'s files go: ``<root or the data folder>/<src.folder>``."""
    base = Path(root).expanduser() if root else default_data_folder()
    return base / src.folder


def fetch(name: str | Source, root: str | os.PathLike[str] | None = None, *,
          sources: Mapping[str, Source] | None = None, mirror: str | None = None,
          progress: ProgressFn | None = None, retries: int = RETRIES, timeout: float = TIMEOUT_S,
          backoff_s: float = 1.0) -> Path:
    """Download, check and unpack one set; returns the folder the loader reads it from.

    Files already there with the right md5 are kept. Raises UnknownSetError, DataFolderError,
    FetchError (its ``.part`` kept when the server can resume it) or ChecksumError (the file
    deleted). A KeyboardInterrupt leaves the ``.part`` for the next call to resume.
    """
    src = name if isinstance(name, Source) else source(name, sources)
    folder = set_folder(src, root)
    _check_writable(folder)
    base = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    report = progress or (lambda _p: None)
    if src.unpack and _members_ok(folder / src.unpack, src):
        size = sum((folder / src.unpack / n).stat().st_size for n in src.members)
        for remote in src.files:
            report(Progress(remote.filename, "have", size, size))
        return folder / src.unpack
    for remote in src.files:
        dest = folder / remote.filename
        if dest.is_file() and md5_of(dest) == remote.md5:
            report(Progress(remote.filename, "have", dest.stat().st_size, dest.stat().st_size))
            continue
        url = f"{base.rstrip('/')}/{src.name}/{remote.filename}" if base else remote.url
        download(url, dest, remote.md5, progress=report, retries=retries, timeout=timeout, backoff_s=backoff_s)
    if src.unpack:
        archive = folder / src.files[0].filename
        size = archive.stat().st_size
        _unpack(archive, folder, src, report)
        archive.unlink()
        report(Progress(archive.name, "done", size, size))
        return folder / src.unpack
    return folder


def md5_of(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise DataFolderError(f"cannot write to the data folder {folder}: {exc.strerror or exc}; "
                              f"choose another with --root or $DLLAB_DATA") from exc


# --- one file ---------------------------------------------------------------------------------


@dataclass
class _Try:
    resumable: bool = True
    """Whether the server can resume: until it answers, a part left from before is kept."""


class _Cut(OSError):
    """The server closed the connection before the end of the file."""


class _AnotherFetch(FetchError):
    pass


def download(url: str, dest: Path, md5: str, *, progress: ProgressFn | None = None,
             retries: int = RETRIES, timeout: float = TIMEOUT_S, backoff_s: float = 1.0) -> None:
    """`url` to `dest` through ``dest.part`` (resumed if there), checked against `md5`, then renamed."""
    report = progress or (lambda _p: None)
    part = dest.with_name(dest.name + PART)
    with _locked(part) as f:
        state = _Try()
        for attempt in range(retries + 1):
            try:
                _transfer(url, f, dest.name, report, timeout, state)
                break
            except (OSError, HTTPException) as exc:  # URLError, timeouts and resets are OSErrors
                http_error = isinstance(exc, urllib.error.HTTPError)
                if http_error:
                    exc.close()
                final = attempt == retries or (http_error and exc.code < 500)
                if final:
                    raise _failed(url, part, f, state, exc) from exc
                time.sleep(backoff_s * 2**attempt)
        report(Progress(dest.name, "verify"))
        f.flush()
        os.fsync(f.fileno())
        got = md5_of(part)
        if got != md5:
            part.unlink()
            raise ChecksumError(f"{dest.name} from {url} has md5 {got}, not the published {md5}: it was "
                                "deleted (a changed or corrupted file); run it again to download it anew")
        os.replace(part, dest)
    report(Progress(dest.name, "done", dest.stat().st_size, dest.stat().st_size))


@contextlib.contextmanager
def _locked(part: Path) -> Iterator[BinaryIO]:
    """``part`` opened for appending, locked against a second `dllab data get` of the same file."""
    f = open(part, "ab")  # closed below, lock and all
    mine = False
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            pass
        else:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise _AnotherFetch(f"another `dllab data get` is downloading {part.name[:-len(PART)]} "
                                    f"into {part.parent}; wait for it") from exc
        mine = True
        yield f
    finally:
        if mine and os.fstat(f.fileno()).st_size == 0:  # nothing came (stopped before the first byte)
            with contextlib.suppress(OSError):
                part.unlink()
        f.close()


def _failed(url: str, part: Path, f: BinaryIO, state: _Try, exc: BaseException) -> FetchError:
    reason = _reason(exc)
    size = os.fstat(f.fileno()).st_size
    if size and state.resumable:
        return FetchError(f"could not download {url}: {reason}; the {size:,} bytes so far are kept in "
                          f"{part}: run it again to resume")
    with contextlib.suppress(OSError):
        part.unlink()
    return FetchError(f"could not download {url}: {reason}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_WHOLE = re.compile(r"bytes\s+\*/(\d+)")


def _transfer(url: str, f: BinaryIO, name: str, report: ProgressFn, timeout: float, state: _Try) -> None:
    """One try: the rest of the file after what ``f`` holds (all of it when the server ignores the
    range, or resumed elsewhere), appended to ``f``."""
    start = os.fstat(f.fileno()).st_size
    headers = {"User-Agent": "dllab", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not start:
            raise
        whole = _WHOLE.match(exc.headers.get("Content-Range", ""))
        exc.close()
        if whole and int(whole[1]) == start:
            return  # the part is the whole file already: the checksum decides
        _restart(f)  # the part is longer than the file: start over
        return _transfer(url, f, name, report, timeout, state)
    with resp:
        total = _length(resp.headers.get("Content-Length"))
        if resp.status == 206:
            m = _RANGE.match(resp.headers.get("Content-Range", ""))
            if m is None or int(m[1]) != start:  # resumed somewhere else: start over
                if not start:
                    raise _Cut("the server sent a part of the file that was not asked for")
                resp.close()
                _restart(f)
                return _transfer(url, f, name, report, timeout, state)
            state.resumable = True
            total = int(m[3]) if m[3] != "*" else (start + total if total is not None else None)
        else:
            state.resumable = resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
            if start:  # the server ignored the range: the whole file comes again
                _restart(f)
                start = 0
        done = start
        report(Progress(name, "download", done, total, resumed=start))
        while chunk := resp.read(CHUNK):
            try:
                f.write(chunk)
            except OSError as exc:  # a full disk: no point trying again
                raise FetchError(f"cannot write {f.name}: {exc.strerror or exc}") from exc
            done += len(chunk)
            report(Progress(name, "download", done, total, resumed=start))
        f.flush()
        if total is not None and done < total:
            raise _Cut(f"the connection closed after {done:,} of {total:,} bytes")


def _length(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _restart(f: BinaryIO) -> None:
    f.seek(0)
    f.truncate()


# --- archives ---------------------------------------------------------------------------------


def _members_ok(folder: Path, src: Source) -> bool:
    return bool(src.members) and all((folder / n).is_file() and md5_of(folder / n) == md5
                                     for n, md5 in src.members.items())


def _unpack(archive: Path, folder: Path, src: Source, report: ProgressFn) -> None:
    """Unpack ``src.unpack`` from the archive into `folder` (through a temporary folder beside it,
    so a set is there whole or not at all) and check the members' md5s."""
    assert src.unpack is not None
    top = src.unpack
    report(Progress(archive.name, "unpack"))
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=folder))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                wanted = [m for m in tar.getmembers() if _inside(m.name, top) and (m.isfile() or m.isdir())]
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=wanted, filter="data")
                else:  # Python before 3.11.4: the members were checked above
                    tar.extractall(tmp, members=wanted)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise FetchError(f"cannot unpack {archive}: {exc}") from exc
        got = tmp / top
        wrong = [n for n, md5 in src.members.items() if not (got / n).is_file() or md5_of(got / n) != md5]
        if wrong:
            archive.unlink()
            raise ChecksumError(f"{archive.name} does not hold the published {', '.join(wrong)}: it was "
                                "deleted; run it again to download it anew")
        dest = folder / top
        if dest.exists() or dest.is_symlink():  # an incomplete copy: out of the way, removed with tmp
            os.replace(dest, tmp / (top + ".old"))
        os.replace(got, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _inside(name: str, top: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and bool(path.parts) and path.parts[0] == top and ".." not in path.parts


# --- what is there ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SetState:
    """One set on disk, as the loader sees it: ``present`` when it would find every file, ``folder``
    where (else where `dllab data get` puts them), ``size`` the bytes there, ``partial`` the bytes
    of downloads waiting to be resumed."""

    source: Source
    present: bool
    folder: Path
    size: int
    partial: int


def state(src: Source, root: str | os.PathLike[str] | None = None) -> SetState:
    from engine.data.base import DatasetError
    from engine.data.images import find_cifar10_folder, find_idx_files

    root_text = os.fspath(root) if root else None
    target = set_folder(src, root)
    partial = sum(p.stat().st_size for p in target.glob(f"*{PART}")) if target.is_dir() else 0
    try:
        if src.dataset == "cifar10":
            folder = find_cifar10_folder(root_text)
            files = [p for p in folder.iterdir() if p.is_file()]
        else:
            folder, paths = find_idx_files(src.dataset, root_text)
            files = list(paths.values())
    except DatasetError:
        size = sum(p.stat().st_size for p in target.iterdir() if p.is_file()) if target.is_dir() else 0
        return SetState(src, False, target, size, partial)
    return SetState(src, True, folder, sum(p.stat().st_size for p in files), partial)


def states(root: str | os.PathLike[str] | None = None,
           sources: Mapping[str, Source] | None = None) -> list[SetState]:
    return [state(src, root) for src in (SOURCES if sources is None else sources).values()]
