"""Material of the service tests: a signed bundle of the sample profiles, a demo store, a real
``riskengine serve`` process on a free loopback port, a small HTTP client, and a TCP proxy
(asyncio) between the service and PostgreSQL that can be cut and restored."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from riskengine.bundle import Manifest, key_id, load_private_key
from riskengine.bundle.build import encode_catalogue, encode_classifier, file_of
from riskengine.bundle.fileformat import EditionEntry, sha256_bytes, write_bundle
from riskengine.catalogue import default_catalogue
from riskengine.classifiers import spheres, units
from riskengine.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def sample_texts(folder: Path = ROOT / "profiles") -> dict[str, str]:
    """The sample profiles' texts by number (the regional fills are left out)."""
    out: dict[str, str] = {}
    for path in sorted(folder.glob("*.rp")):
        text = path.read_text(encoding="utf-8")
        source = parse(text, str(path))
        for profile in source.profiles:
            out[str(profile.number)] = text
    return out


def make_bundle(out: Path, key: Path, revision: int, texts: dict[str, str] | None = None) -> Path:
    """Sign a bundle of ``texts`` (number -> text; default the sample profiles) as revision
    ``revision`` with the private key file ``key``, as ``riskengine bundle build`` writes it."""
    texts = sample_texts() if texts is None else texts
    private = load_private_key(key)
    catalogue = default_catalogue()
    members: dict[str, bytes] = {
        "catalogue.json": encode_catalogue(catalogue),
        "classifiers/reasons.json": encode_classifier(catalogue.reasons),
        "classifiers/units.json": encode_classifier(units()),
        "classifiers/spheres.json": encode_classifier(spheres()),
    }
    editions = []
    for number, text in sorted(texts.items()):
        data = text.encode("utf-8")
        members[file_of(number)] = data
        digest = sha256_bytes(data)
        editions.append(
            EditionEntry(number, file_of(number), digest, digest, False, dt.date(2000, 1, 1), None)
        )
    manifest = Manifest(
        revision=revision,
        created_at=dt.datetime(2026, 12, 6, 12, 0, 0),
        created_by="tests",
        as_of=dt.date(2024, 1, 1),
        key=key_id(private),
        log_entry=None,
        log_hash=None,
        catalogue_version=None,
        editions=tuple(editions),
        fills=(),
        members={name: sha256_bytes(data) for name, data in sorted(members.items())},
    )
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as stream:
        write_bundle(stream, manifest, members, private)
    os.replace(tmp, out)  # the service never sees a half-written file
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client:
    """One keep-alive HTTP/1.1 connection to the service."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if body is not None and content_type is not None:
            sent["Content-Type"] = content_type
        for attempt in range(2):
            try:
                self._conn.request(method, path, body=body, headers=sent)
                response = self._conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()  # a kept-alive connection the server closed: once more
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout
                )
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: Any = None, **kw: Any) -> tuple[int, Any]:
        body = None if payload is None else json.dumps(payload).encode()
        status, _, data = self.request(method, path, body, **kw)
        return status, json.loads(data)

    def close(self) -> None:
        self._conn.close()


class Server:
    """``riskengine serve`` in a child process on a free loopback port."""

    def __init__(self, *args: str | Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.args = [str(a) for a in args]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        # a file, not a pipe: a full pipe would block the service
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the object

    @property
    def stderr(self) -> bytes:
        """Everything the service wrote on standard error so far."""
        self._err.seek(0)
        return self._err.read()

    def start(self, timeout: float = 60.0) -> Server:
        command = [PYTHON, "-m", "riskengine", "serve", "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(
            command, env=self.env, stdout=subprocess.DEVNULL, stderr=self._err
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited {self.proc.returncode}: {self.stderr!r}")
            try:
                client = Client(self.port, timeout=2)
                status, _, _ = client.request("GET", "/healthz")
                client.close()
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the service did not answer within {timeout} s: {self.stderr!r}")

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


class Proxy:
    """A TCP forwarder (asyncio, on its own thread) to ``upstream``: :meth:`cut` closes the
    listening socket and every connection (the store is gone), :meth:`restore` listens again on
    the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, reuse_address=True
        )

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@contextlib.contextmanager
def clients(port: int, n: int) -> Iterator[list[Client]]:
    made = [Client(port) for _ in range(n)]
    try:
        yield made
    finally:
        for c in made:
            c.close()


def chunks(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[k : k + size] for k in range(0, len(seq), size)]
