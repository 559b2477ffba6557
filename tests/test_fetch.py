"""`dllab data get` / `dllab data list` (engine.data.fetch) against a server on 127.0.0.1.

The server (a thread, port 0) serves tiny files in the real formats: gzipped IDX files with a few
28×28 images, a CIFAR-10 tar.gz with python batches of a few images. It honours Range requests (or
is told to ignore them), can drop the connection part-way through a file once, and can serve a
corrupted copy. The real source table stays the default: the tests pass their own (with the tiny
files' md5s), or patch it and point ``$DLLAB_DATA_MIRROR`` at the server. Every test runs with
connections to anything but 127.0.0.1 refused, and no proxy.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import struct
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import engine.data.fetch as fetch_mod
from engine.data import DatasetError, load_data
from engine.data.fetch import ChecksumError, FetchError, Remote, Source, fetch, states
from engine.recipe.config import DataSpec
from tui_lab.cli import main

LOCAL = "127.0.0.1"
IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_NAMES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


# --- tiny files in the real formats ---------------------------------------------------------------


def idx_gz(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.tobytes(), mtime=0)


def mnist_files(n_train: int = 40, n_test: int = 20, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
              rng.integers(0, 256, (n_test, 28, 28)), np.arange(n_test) % 10]
    return {name: idx_gz(a) for name, a in zip(IDX_NAMES, arrays, strict=True)}


def cifar_batch(n: int, rng: np.random.Generator, name: str) -> bytes:
    batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
             b"labels": [int(v) for v in np.arange(n) % 10], b"batch_label": name.encode()}
    return pickle.dumps(batch, protocol=2)


def cifar_members(per_batch: int = 10, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    members = {name: cifar_batch(per_batch, rng, name) for name in CIFAR_NAMES}
    members["batches.meta"] = pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}, protocol=2)
    return members


def tar_gz(entries: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- the server -------------------------------------------------------------------------------------


class Server:
    """Files by URL path; ``requests`` records (path, Range header, status) of each GET."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        self.ranges = True
        self.cut: dict[str, int] = {}  # path -> drop the connection after this many body bytes, once
        self.corrupt: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                body = server.files.get(self.path)
                rng = self.headers.get("Range")
                if body is None:
                    server.requests.append((self.path, rng, 404))
                    self.send_error(404)
                    return
                if self.path in server.corrupt:
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                start = int(rng.removeprefix("bytes=").rstrip("-")) if rng and server.ranges else 0
                if start >= len(body) and start:
                    server.requests.append((self.path, rng, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206 if start else 200
                server.requests.append((self.path, rng, status))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if server.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                cut = server.cut.pop(self.path, None)
                part = body[start:] if cut is None else body[start:start + cut]
                self.wfile.write(part)
                self.wfile.flush()
                if cut is not None:  # the connection drops mid-file
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

        self.httpd = ThreadingHTTPServer((LOCAL, 0), Handler)
        self.url = f"http://{LOCAL}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def gets(self, path: str) -> list[tuple[str | None, int]]:
        return [(rng, status) for p, rng, status in self.requests if p == path]


@pytest.fixture(autouse=True)
def only_local_network(monkeypatch):
    """Nothing here may reach beyond 127.0.0.1: no proxy, no name lookups or connections elsewhere."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv("DLLAB_DATA", raising=False)
    monkeypatch.delenv(fetch_mod.MIRROR_ENV, raising=False)
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def local_lookup(host, *args, **kwargs):
        if host not in (LOCAL, "localhost"):
            raise AssertionError(f"a test tried to look up {host!r}")
        return lookup(host, *args, **kwargs)

    def local_connect(self, address):
        if isinstance(address, tuple) and address[0] != LOCAL:
            raise AssertionError(f"a test tried to connect to {address!r}")
        return connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", local_lookup)
    monkeypatch.setattr(socket.socket, "connect", local_connect)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DLLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def server():
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def serve_mnist(server: Server, prefix: str = "/mnist") -> dict[str, Source]:
    files = mnist_files()
    remotes = []
    for name, data in files.items():
        server.files[f"{prefix}/{name}"] = data
        remotes.append(Remote(f"{server.url}{prefix}/{name}", md5(data)))
    return {"mnist": Source("mnist", "mnist", "mnist", tuple(remotes))}


def serve_cifar(server: Server, extra: list[tarfile.TarInfo] | None = None) -> dict[str, Source]:
    members = cifar_members()
    archive = tar_gz({f"cifar-10-batches-py/{n}": data for n, data in members.items()}, extra)
    server.files["/cifar10/cifar-10-python.tar.gz"] = archive
    return {"cifar10": Source("cifar10", "cifar10", "cifar10",
                              (Remote(f"{server.url}/cifar10/cifar-10-python.tar.gz", md5(archive)),),
                              unpack="cifar-10-batches-py",
                              members={n: md5(members[n]) for n in CIFAR_NAMES})}


# --- fetching ---------------------------------------------------------------------------------------


def test_get_checks_the_files_and_the_loader_finds_them_in_the_default_folder(home, server) -> None:
    sources = serve_mnist(server)
    seen = []
    folder = fetch("mnist", sources=sources, progress=seen.append)
    assert folder == home / "data" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(IDX_NAMES)  # gzipped as served, no .part
    assert {p.stage for p in seen} >= {"download", "verify", "done"}
    d = load_data(DataSpec(name="mnist"), seed=0)  # no root, no $DLLAB_DATA: the default folder
    assert d.input_shape == (1, 28, 28) and len(d.x_test) == 20 and len(d.x_train) + len(d.x_val) == 40
    assert str(folder) in d.info["source"]

    n = len(server.requests)
    again = []
    fetch("mnist", sources=sources, progress=again.append)  # checked and kept: nothing downloaded
    assert len(server.requests) == n and {p.stage for p in again} == {"have"}


def test_dllab_data_names_the_folder_and_cifar10_is_unpacked_there(tmp_path, home, server, monkeypatch) -> None:
    monkeypatch.setenv("DLLAB_DATA", str(tmp_path / "data"))
    folder = fetch("cifar10", sources=serve_cifar(server))
    assert folder == tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    assert not (folder.parent / "cifar-10-python.tar.gz").exists()  # unpacked, then removed
    assert [p.name for p in folder.parent.iterdir()] == ["cifar-10-batches-py"]  # no temporary folder left
    d = load_data(DataSpec(name="cifar10"), seed=0)
    assert d.input_shape == (3, 32, 32) and len(d.x_test) == 10 and len(d.x_train) + len(d.x_val) == 50


def test_a_cut_download_resumes_with_a_range_request(home, server) -> None:
    sources = serve_mnist(server)
    path = "/mnist/train-images-idx3-ubyte.gz"
    server.cut[path] = 4000
    with pytest.raises(FetchError, match="run it again to resume") as err:
        fetch("mnist", sources=sources, retries=0)
    assert not isinstance(err.value, ChecksumError)
    part = home / "data" / "mnist" / "train-images-idx3-ubyte.gz.part"
    assert part.stat().st_size == 4000  # kept for the next try

    seen = []
    fetch("mnist", sources=sources, progress=seen.append)
    assert server.gets(path) == [(None, 200), ("bytes=4000-", 206)]
    final = home / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    assert final.read_bytes() == server.files[path] and not part.exists()
    assert any(p.resumed == 4000 for p in seen if p.file == final.name)


def test_a_cut_is_retried_in_the_same_call(home, server) -> None:
    sources = serve_mnist(server)
    path = "/mnist/t10k-images-idx3-ubyte.gz"
    server.cut[path] = 1000
    fetch("mnist", sources=sources, retries=1, backoff_s=0)
    assert server.gets(path) == [(None, 200), ("bytes=1000-", 206)]
    assert (home / "data" / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes() == server.files[path]


def test_a_server_that_ignores_range_is_started_over(home, server) -> None:
    sources = serve_mnist(server)
    server.ranges = False
    path = "/mnist/train-images-idx3-ubyte.gz"
    server.cut[path] = 3000
    fetch("mnist", sources=sources, retries=1, backoff_s=0)
    assert server.gets(path) == [(None, 200), ("bytes=3000-", 200)]  # asked for the rest, got it all
    assert (home / "data" / "mnist" / "train-images-idx3-ubyte.gz").read_bytes() == server.files[path]

    server.cut[path] = 3000  # a part the server cannot resume is not kept
    (home / "data" / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FetchError) as err:
        fetch("mnist", sources=sources, retries=0)
    assert "resume" not in str(err.value)
    assert not (home / "data" / "mnist" / "train-images-idx3-ubyte.gz.part").exists()


def test_a_part_that_is_already_whole_is_checked_not_fetched_again(home, server) -> None:
    sources = serve_mnist(server)
    path = "/mnist/train-labels-idx1-ubyte.gz"
    folder = home / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / "train-labels-idx1-ubyte.gz.part").write_bytes(server.files[path])
    fetch("mnist", sources=sources)
    assert server.gets(path) == [(f"bytes={len(server.files[path])}-", 416)]
    assert (folder / "train-labels-idx1-ubyte.gz").read_bytes() == server.files[path]


def test_a_checksum_mismatch_is_an_error_and_leaves_no_file(home, server) -> None:
    sources = serve_mnist(server)
    server.corrupt.add("/mnist/train-images-idx3-ubyte.gz")
    with pytest.raises(ChecksumError, match="md5"):
        fetch("mnist", sources=sources)
    names = [p.name for p in (home / "data" / "mnist").iterdir()]
    assert not any(n.startswith("train-images") for n in names), names


def test_a_cifar_archive_cannot_write_outside_its_folder(tmp_path, home, server) -> None:
    evil = []
    for name in ("../escaped", "cifar-10-batches-py/../../escaped2", "/tmp/absolute-escape"):
        info = tarfile.TarInfo(name)
        info.size = 1
        evil.append(info)
    link = tarfile.TarInfo("cifar-10-batches-py/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    evil.append(link)
    folder = fetch("cifar10", sources=serve_cifar(server, extra=evil))
    data = home / "data"
    assert not (data / "escaped").exists() and not (data / "cifar10" / "escaped2").exists()
    assert not Path("/tmp/absolute-escape").exists() and not (folder / "link").exists()
    assert {p.name for p in folder.iterdir()} == {*CIFAR_NAMES, "batches.meta"}


def test_the_missing_files_message_says_how_to_fetch_them(home) -> None:
    with pytest.raises(DatasetError) as err:
        load_data(DataSpec(name="fashion_mnist"), seed=0)
    text = str(err.value)
    assert "`dllab data get fashion-mnist`" in text and str(home / "data") in text and "DLLAB_DATA" in text


def test_default_home_is_still_importable_from_the_store() -> None:
    from engine.paths import default_home
    from engine.runs.store import default_home as from_store

    assert from_store is default_home


# --- the command ------------------------------------------------------------------------------------


@pytest.fixture
def mirrored(server, monkeypatch) -> Server:
    """The real table's names and folders with the tiny files' md5s, fetched through the mirror."""
    local = {**serve_mnist(server), **serve_cifar(server)}
    table = {name: Source(real.name, real.dataset, real.folder,
                          tuple(Remote(r.url, local[name].files[i].md5) for i, r in enumerate(real.files)),
                          real.unpack, local[name].members, real.about)
             for name, real in fetch_mod.SOURCES.items() if name in local}
    monkeypatch.setattr(fetch_mod, "SOURCES", table)
    monkeypatch.setenv(fetch_mod.MIRROR_ENV, server.url)
    return server


def test_data_get_and_list(home, mirrored, capsys) -> None:
    assert main(["data", "list"]) == 0
    before = capsys.readouterr().out
    assert "mnist" in before and "yes" not in before and str(home / "data") in before

    assert main(["data", "get", "mnist"]) == 0
    out, err = capsys.readouterr()
    assert f"mnist is ready in {home / 'data' / 'mnist'}" in out
    assert "train-images-idx3-ubyte.gz" in err  # the progress bars, on stderr
    assert [p for p, _, _ in mirrored.requests] == [f"/mnist/{n}" for n in IDX_NAMES]

    assert main(["data", "list"]) == 0
    after = capsys.readouterr().out
    mnist_row = next(line for line in after.splitlines() if "│ mnist " in line)
    assert "yes" in mnist_row and "kB" in mnist_row
    assert main(["data"]) == 0 and "cifar10" in capsys.readouterr().out  # `dllab data` alone lists


def test_data_get_unknown_name_is_exit_2_with_the_choices(home, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["data", "get", "imagenet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown data set 'imagenet'" in err and "mnist, fashion-mnist, cifar10" in err


def test_data_get_into_a_folder_that_cannot_be_written_is_exit_2(tmp_path, home, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["data", "get", "mnist", "--root", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dllab: cannot write to the data folder") and "Traceback" not in err


def test_data_get_checksum_mismatch_is_exit_1(home, mirrored, capsys) -> None:
    mirrored.corrupt.add("/cifar10/cifar-10-python.tar.gz")
    assert main(["data", "get", "cifar10"]) == 1
    err = capsys.readouterr().err
    assert "md5" in err and "deleted" in err
    assert [p.name for p in (home / "data" / "cifar10").iterdir()] == []


def test_data_get_network_error_is_exit_1(home, server, monkeypatch, capsys) -> None:
    monkeypatch.setenv(fetch_mod.MIRROR_ENV, server.url)  # serves nothing: 404
    assert main(["data", "get", "fashion-mnist"]) == 1
    err = capsys.readouterr().err
    assert "404" in err and f"{server.url}/fashion-mnist/train-images-idx3-ubyte.gz" in err


def test_data_get_interrupted_is_exit_130_and_keeps_the_part(home, mirrored, monkeypatch, capsys) -> None:
    import tui_lab.commands.data as data_cmd

    update = data_cmd._Bars.update

    def ctrl_c_midway(self, p) -> None:
        update(self, p)
        if p.stage == "download" and p.done:
            raise KeyboardInterrupt

    monkeypatch.setattr(data_cmd._Bars, "update", ctrl_c_midway)
    assert main(["data", "get", "mnist"]) == 130
    assert "`dllab data get mnist` resumes it" in capsys.readouterr().err
    part = home / "data" / "mnist" / "train-images-idx3-ubyte.gz.part"
    assert part.stat().st_size > 0
    assert [s.partial > 0 for s in states()][0]


def test_root_option_of_get_and_list(tmp_path, home, mirrored, capsys) -> None:
    root = tmp_path / "elsewhere"
    assert main(["data", "get", "cifar10", "--root", str(root)]) == 0
    assert "data.root" in capsys.readouterr().out  # runs look there only when told
    assert (root / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()
    assert main(["data", "list", "--root", str(root)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "│ cifar10 " in line)
    assert "yes" in row
