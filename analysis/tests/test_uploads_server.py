"""Resumable uploads against a real daphne process, driven by a stock tus client (tuspy):
a >= 1 GB recording, its connection dropped mid-chunk at ~50%, resumed; the server's
memory stays flat and the stored recording is byte-identical."""

import hashlib
import io
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from analysis import uploads
from analysis.models import ResumableUpload, UploadState
from procedures.models import Video
from testing import servers
from testing.videos import run_ffmpeg

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CHUNK = 8 * 1024**2  # what the browser client sends per PATCH
GIB = 1024**3


def make_big_transport_stream(path: Path, min_bytes: int) -> Path:
    """High-bitrate intra-only MPEG-2 in MPEG-TS (noise defeats compression: ~1 MB a frame
    at 720p), the way a tower recorder's export looks, generated in ~15 s."""
    frames = min_bytes // (900 * 1024) + 25
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25,noise=alls=100:allf=t+u", "-frames:v", str(frames),
                "-c:v", "mpeg2video", "-q:v", "1", "-g", "1", "-f", "mpegts", str(path)])
    assert path.stat().st_size >= min_bytes, path.stat().st_size
    return path


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakMemory:
    """Samples a process's resident memory every 20 ms while in use."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.baseline = rss_bytes(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def drop_connection_mid_chunk(base: str, location: str, token: str, offset: int, send_bytes: int) -> None:
    """A PATCH that announces a full chunk and dies half-way, as on a flaky hospital network."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = (f"PATCH {location} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Token {token}\r\n"
                f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {CHUNK}\r\n\r\n").encode()
        sock.sendall(head + b"\0" * send_bytes)
    time.sleep(0.5)  # the server notices the closed connection


@pytest.fixture
def server(tmp_path, media_root, demo_model_dir):
    # No worker in the server: what is measured is the upload, not the analysis after it.
    with servers.daphne(tmp_path, CELERY_EMBEDDED_WORKER="false") as base:
        yield base


def server_pid(base: str) -> int:
    port = int(urlsplit(base).port)
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = path.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"medvision.serve" in cmd and str(port).encode() in cmd:
            return int(path.parent.name)
    raise AssertionError("daphne process not found")


@pytest.mark.skipif(not settings.EMBEDDED, reason="embedded profile only: the transfer does not depend on the "
                                                   "database engine, and one 1 GB run per CI is enough")
def test_a_1gb_upload_interrupted_at_half_resumes_in_flat_memory_to_an_identical_recording(
        server, session, clinician, tmp_path, media_root):
    source = make_big_transport_stream(tmp_path / "tower-export.ts", GIB)
    expected = sha256_of(source)
    token = Token.objects.create(user=clinician).key
    client = tus_client.TusClient(f"{server}/api/v1/procedures/{session.pk}/uploads/",
                                  headers={"Authorization": f"Token {token}"})
    pid = server_pid(server)

    # Warm up the code paths (imports, first connections) with a small upload cancelled at once.
    client.uploader(file_stream=io.BytesIO(b"warm" * 1000), chunk_size=CHUNK, metadata={"filename": "warm-up"}).upload()

    with PeakMemory(pid) as memory:
        first = client.uploader(str(source), chunk_size=CHUNK, metadata={"filename": source.name},
                                upload_checksum=True)
        first.upload(stop_at=source.stat().st_size // 2)
        stopped_at = first.offset
        assert stopped_at >= source.stat().st_size // 2
        location = urlsplit(first.url).path
        drop_connection_mid_chunk(server, location, token, stopped_at, CHUNK // 2)

        resumed = client.uploader(str(source), chunk_size=CHUNK, url=first.url, upload_checksum=True)
        assert resumed.offset == stopped_at  # asked the server (HEAD): the broken chunk left nothing
        started = time.monotonic()
        resumed.upload()
        elapsed = time.monotonic() - started
    print(f"\nserver RSS baseline {memory.baseline / 2**20:.0f} MiB, peak growth {memory.growth / 2**20:.1f} MiB; "
          f"second half at {(source.stat().st_size - stopped_at) / elapsed / 2**20:.0f} MiB/s")
    assert memory.growth < 100 * 2**20

    upload = ResumableUpload.objects.get(filename=source.name)
    assert upload.state == UploadState.CHECKING and upload.offset == source.stat().st_size
    # The server has no worker here: finish it as the worker would.
    uploads.upload_finish(upload.pk)
    video = Video.objects.get(session=session)
    assert video.sha256 == expected
    assert sha256_of(Path(settings.MEDIA_ROOT) / video.file.name) == expected
    assert video.number == 1 and "mpegts" in video.container
    assert not uploads.part_path(upload).exists()


def test_a_chunk_over_the_routes_limit_is_refused_before_it_is_read(server, session, clinician):
    token = Token.objects.create(user=clinician).key
    client = tus_client.TusClient(f"{server}/api/v1/procedures/{session.pk}/uploads/",
                                  headers={"Authorization": f"Token {token}"})
    big = settings.TUS_MAX_CHUNK_BYTES + 1
    uploader = client.uploader(file_stream=io.BytesIO(b"\0" * big), chunk_size=big)
    with pytest.raises(TusCommunicationError) as refused:
        uploader.upload_chunk()
    assert refused.value.status_code == 413
    assert ResumableUpload.objects.get().offset == 0
