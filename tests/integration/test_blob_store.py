"""One blob-store contract, run on a local folder, in memory, and on S3 (moto's real server).

put_file trusts the caller's sha256 (the archiver hashes while downloading), so no test
here stores bytes under a hash they do not have, except to prove that write-once wins.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PosixPath
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the venv
import pytest

from storage.blobs import BlobInfo, BlobNotFound, BlobStore, BlobStoreError, key_for
from tests.support.moto_server import MotoS3, moto_s3_server

MiB = 1024 * 1024
SMALL = 100_000
LARGE = 9 * MiB  # over the 8 MiB single-put limit: the streamed multipart path
HUGE = 100 * MiB
RSS_BOUND = 64 * MiB
EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass
class Backend:
    name: str
    store: BlobStore
    folder: Path | None = None
    moto: MotoS3 | None = None
    bucket: str = ""

    def stray_files(self) -> list[str]:
        """Everything in the local folder: blobs plus any staging leftovers."""
        assert self.folder is not None
        return sorted(
            str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file()
        )


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with moto_s3_server() as server:
        yield server


@pytest.fixture(params=["local", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        folder = tmp_path / "media"
        return Backend("local", BlobStore.from_url(folder.as_uri()), folder=folder)
    if request.param == "memory":
        return Backend("memory", BlobStore.from_url("memory://"))
    moto: MotoS3 = request.getfixturevalue("moto")
    bucket = moto.create_bucket()
    store = BlobStore.from_url(f"s3://{bucket}/archive", env=moto.env())
    return Backend("s3", store, moto=moto, bucket=bucket)


def write(folder: Path, data: bytes, name: str = "source.bin") -> tuple[Path, str]:
    path = folder / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def read_all(store: BlobStore, sha256: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(sha256, start, end)])


async def listed(store: BlobStore) -> list[tuple[str, int]]:
    return sorted([item async for item in store.list_hashes()])


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_put_then_head_read_list_rehash(backend: Backend, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path, sha = write(tmp_path, data)

    assert await backend.store.put_file(path, sha, "image/png") is True

    expected_type = None if backend.name == "local" else "image/png"
    assert await backend.store.head(sha) == BlobInfo(size, expected_type)
    assert await read_all(backend.store, sha) == data
    assert await listed(backend.store) == [(sha, size)]
    assert await backend.store.rehash(sha) == sha


async def test_a_type_an_output_cannot_be_is_stored_as_an_opaque_attachment(
    backend: Backend, tmp_path: Path
) -> None:
    """A presigned link is answered by the bucket with the stored headers: an HTML "output"
    must not render there."""
    path, sha = write(tmp_path, b"<script>alert(document.domain)</script>")
    await backend.store.put_file(path, sha, "text/html")
    # a local store keeps no type at all: only the service serves it, as an attachment
    stored = None if backend.name == "local" else "application/octet-stream"
    assert await backend.store.head(sha) == BlobInfo(path.stat().st_size, stored)
    if backend.moto is not None:
        url = await backend.store.signed_url(sha, timedelta(minutes=5))
        assert url is not None
        async with httpx.AsyncClient() as http:
            answer = await http.get(url)
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"] == "attachment"


async def test_keys_are_content_addressed_under_the_root(backend: Backend, tmp_path: Path) -> None:
    data = b"where does it land"
    path, sha = write(tmp_path, data)
    await backend.store.put_file(path, sha)

    assert key_for(sha) == f"sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    if backend.folder is not None:
        assert (backend.folder / key_for(sha)).read_bytes() == data
    if backend.moto is not None:
        assert backend.moto.object_keys(backend.bucket) == [f"archive/{key_for(sha)}"]


async def test_byte_ranges_are_end_exclusive_and_clamped(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    path, sha = write(tmp_path, data)
    await backend.store.put_file(path, sha)
    n = len(data)

    spans = [(0, 1), (5, 10), (MiB - 3, 2 * MiB + 5), (n - 1, None), (100, n + 50), (0, None)]
    for start, end in spans:
        assert await read_all(backend.store, sha, start, end) == data[start:end], (start, end)
    for start, end in [(7, 7), (n, None), (n + 10, n + 20)]:
        assert await read_all(backend.store, sha, start, end) == b"", (start, end)
    with pytest.raises(BlobStoreError, match="bad byte range"):
        await read_all(backend.store, sha, 10, 5)


async def test_empty_blob(backend: Backend, tmp_path: Path) -> None:
    path, sha = write(tmp_path, b"")
    assert sha == EMPTY_SHA

    assert await backend.store.put_file(path, sha) is True
    assert (await backend.store.head(sha)) is not None
    assert await read_all(backend.store, sha) == b""
    assert await read_all(backend.store, sha, 0, 10) == b""
    assert await backend.store.rehash(sha) == sha


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_write_once_keeps_the_first_blob(backend: Backend, tmp_path: Path, size: int) -> None:
    original = os.urandom(size)
    first, sha = write(tmp_path, original, "first.bin")
    # Different bytes under the same hash: a caller bug, but it shows nothing is overwritten.
    second, _ = write(tmp_path, os.urandom(size), "second.bin")

    assert await backend.store.put_file(first, sha) is True
    assert await backend.store.put_file(second, sha) is False
    assert await backend.store.put_file(first, sha) is False

    assert await read_all(backend.store, sha) == original
    assert await listed(backend.store) == [(sha, size)]


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_concurrent_puts_leave_one_intact_blob(
    backend: Backend, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    path, sha = write(tmp_path, data)

    results = await asyncio.gather(*(backend.store.put_file(path, sha) for _ in range(2)))

    if size == SMALL:
        assert sorted(results) == [False, True]  # create-if-absent: exactly one writer wins
    else:
        assert True in results  # check-then-put: both may write, with identical bytes
    assert await listed(backend.store) == [(sha, size)]
    assert await backend.store.rehash(sha) == sha
    if backend.folder is not None:
        assert backend.stray_files() == [key_for(sha)]


async def test_missing_blobs(backend: Backend) -> None:
    sha = hashlib.sha256(b"never stored").hexdigest()

    assert await backend.store.head(sha) is None
    with pytest.raises(BlobNotFound):
        await read_all(backend.store, sha)
    with pytest.raises(BlobNotFound):
        await read_all(backend.store, sha, 10, 20)
    with pytest.raises(BlobNotFound):
        await backend.store.rehash(sha)
    await backend.store.delete(sha)  # deleting nothing is not an error
    assert await listed(backend.store) == []


async def test_delete(backend: Backend, tmp_path: Path) -> None:
    path, sha = write(tmp_path, b"short-lived")
    await backend.store.put_file(path, sha)

    await backend.store.delete(sha)

    assert await backend.store.head(sha) is None
    assert await listed(backend.store) == []
    assert await backend.store.put_file(path, sha) is True


class _MisbehavingFile:
    """A real file whose on-disk contents change (or fail) right after the first read."""

    def __init__(self, path: Path, mode: str) -> None:
        self._path, self._mode, self._reads = path, mode, 0
        self._file = open(path, "rb")  # noqa: SIM115

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, size: int = -1) -> bytes:
        self._reads += 1
        if self._mode == "fails" and self._reads == 3:
            raise OSError(errno.EIO, "simulated disk error")
        chunk = self._file.read(size)
        if self._reads == 1 and self._mode == "shrinks":
            os.truncate(self._path, 2 * MiB)
        if self._reads == 1 and self._mode == "grows":
            with open(self._path, "ab") as more:
                more.write(os.urandom(2 * MiB))
        return chunk

    def close(self) -> None:
        self._file.close()


class _SourcePath(PosixPath):
    """What put_file opens; lets a test change the source file mid-upload."""

    mode = "shrinks"

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return _MisbehavingFile(Path(self), self.mode)


@pytest.mark.parametrize(
    ("mode", "error"), [("shrinks", BlobStoreError), ("grows", BlobStoreError), ("fails", OSError)]
)
async def test_a_source_that_changes_mid_upload_stores_nothing(
    backend: Backend, tmp_path: Path, mode: str, error: type[Exception]
) -> None:
    path, sha = write(tmp_path, os.urandom(LARGE))
    source = _SourcePath(path)
    source.mode = mode

    with pytest.raises(error):
        await backend.store.put_file(source, sha)

    assert await backend.store.head(sha) is None
    assert await listed(backend.store) == []
    if backend.folder is not None:
        assert backend.stray_files() == []  # the staging file went too
    if backend.moto is not None:
        assert backend.moto.object_keys(backend.bucket) == []
        assert backend.moto.open_multipart_uploads(backend.bucket) == 0  # aborted, not orphaned


class _StallingPath(PosixPath):
    """A source that delivers one chunk, then stalls until released."""

    started = threading.Event()
    release = threading.Event()

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return _StallingFile(Path(self), self.started, self.release)


class _StallingFile(_MisbehavingFile):
    def __init__(self, path: Path, started: threading.Event, release: threading.Event) -> None:
        super().__init__(path, "stalls")
        self._started, self._release = started, release

    def read(self, size: int = -1) -> bytes:
        if self._reads >= 1:
            self._started.set()
            self._release.wait(10)
        return super().read(size)


async def test_a_cancelled_put_stores_nothing(backend: Backend, tmp_path: Path) -> None:
    path, sha = write(tmp_path, os.urandom(LARGE))
    source = _StallingPath(path)
    source.started, source.release = threading.Event(), threading.Event()

    task = asyncio.create_task(backend.store.put_file(source, sha))
    assert await asyncio.to_thread(source.started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    source.release.set()
    await asyncio.sleep(0.5)  # anything still in flight would land by now

    assert await backend.store.head(sha) is None
    assert await listed(backend.store) == []
    if backend.folder is not None:
        assert backend.stray_files() == []
    if backend.moto is not None:
        assert backend.moto.object_keys(backend.bucket) == []
    # On S3 the abandoned multipart upload stays open (hidden, never listed as an object):
    # obstore cannot abort it once the task is cancelled; a bucket lifecycle rule reaps it.


@pytest.fixture(scope="module")
def huge_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("huge") / "video.bin"
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for i in range(HUGE // MiB):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


class PeakRss:
    """Samples this process's RSS every 2 ms; `growth` is peak minus the starting value."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.start = self.peak = self._rss()

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


@pytest.mark.parametrize("backend", ["local", "s3"], indirect=True)
async def test_large_files_stream_in_bounded_memory(
    backend: Backend, huge_file: tuple[Path, str]
) -> None:
    path, sha = huge_file

    with PeakRss() as put:
        assert await backend.store.put_file(path, sha, "video/mp4") is True
    with PeakRss() as rehash:
        assert await backend.store.rehash(sha) == sha

    print(  # shown with -s; the report quotes these figures
        f"\n{backend.name}: put_file RSS +{put.growth / MiB:.1f} MiB, "
        f"rehash RSS +{rehash.growth / MiB:.1f} MiB for {HUGE // MiB} MiB"
    )
    assert put.growth < RSS_BOUND
    assert rehash.growth < RSS_BOUND
    assert (await backend.store.head(sha)) is not None


async def test_list_skips_objects_outside_the_key_layout(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    store = BlobStore.from_url(folder.as_uri())
    path, sha = write(tmp_path, b"the real one")
    await store.put_file(path, sha)
    other = hashlib.sha256(b"misfiled").hexdigest()
    for junk in [f"sha256/00/00/{other}", f"{key_for(other)}#1", "sha256/ab/notes.txt", "x/y"]:
        (folder / junk).parent.mkdir(parents=True, exist_ok=True)
        (folder / junk).write_bytes(b"junk")

    assert await listed(store) == [(sha, len(b"the real one"))]


@pytest.mark.parametrize(
    "bad", ["", "nonsense", "A" * 64, "a" * 63, "g" * 64, " " + "a" * 64, "a" * 64 + "\n"]
)
async def test_hashes_must_be_64_lowercase_hex(tmp_path: Path, bad: str) -> None:
    store = BlobStore.from_url("memory://")
    path, _ = write(tmp_path, b"x")

    with pytest.raises(BlobStoreError, match="sha256"):
        key_for(bad)
    with pytest.raises(BlobStoreError):
        await store.put_file(path, bad)
    with pytest.raises(BlobStoreError):
        await store.head(bad)
    with pytest.raises(BlobStoreError):
        await read_all(store, bad)
    with pytest.raises(BlobStoreError):
        await store.delete(bad)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "media",
        "/abs/path/without/scheme",
        "ftp://host/media",
        "https://example.com/media",
        "file://relative/path",
        "file:relative/path",
        "file:///tmp/media?mode=fast",
        "s3://",
        "s3:///prefix-only",
        "s3://Not_A_Bucket/prefix",
        "s3://bucket/prefix#fragment",
        "memory://somewhere",
    ],
)
def test_bad_urls_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(BlobStoreError) as caught:
        BlobStore.from_url(url, env={})

    message = str(caught.value)
    assert repr(url) in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_a_folder_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    url = (blocker / "media").as_uri()

    with pytest.raises(BlobStoreError, match="cannot create the folder") as caught:
        BlobStore.from_url(url)
    assert url in str(caught.value)


def test_file_urls_create_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "media dir"
    store = BlobStore.from_url(folder.as_uri())

    assert folder.is_dir()
    assert store.describe() == folder.as_uri()


def test_describe_never_shows_credentials() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY": "very-secret-value",
        "AWS_SESSION_TOKEN": "session-token-value",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://user:endpoint-password@127.0.0.1:9",
    }
    described = BlobStore.from_url("s3://my-bucket/some/prefix", env=env).describe()

    assert described.startswith("s3://my-bucket/some/prefix")
    for secret in ["AKIAEXAMPLEKEY", "very-secret-value", "session-token", "endpoint-password"]:
        assert secret not in described
    assert BlobStore.from_url("memory://").describe() == "memory://"


async def test_prefixes_keep_stores_apart(moto: MotoS3, tmp_path: Path) -> None:
    bucket = moto.create_bucket()
    one = BlobStore.from_url(f"s3://{bucket}/one", env=moto.env())
    two = BlobStore.from_url(f"s3://{bucket}/two/deeper", env=moto.env())
    path, sha = write(tmp_path, b"only in one")

    await one.put_file(path, sha)

    assert await two.head(sha) is None
    assert await listed(two) == []
    assert await two.put_file(path, sha) is True
    assert await listed(one) == await listed(two) == [(sha, len(b"only in one"))]


async def test_adopt_moves_a_finished_file_in(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    source, digest = write(tmp_path, data, "spool.part")
    assert await backend.store.adopt_file(source, digest, "image/png") is True
    assert not source.exists()
    assert await read_all(backend.store, digest) == data
    again, _ = write(tmp_path, data, "spool2.part")
    assert await backend.store.adopt_file(again, digest) is False
    assert not again.exists()
    assert await read_all(backend.store, digest) == data
