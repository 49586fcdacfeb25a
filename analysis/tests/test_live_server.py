"""Live frames through the real server (daphne on loopback, as operators start it)."""

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db(transaction=True)


def big_jpeg() -> bytes:
    """A 1.3 MB frame: over daphne's default 1 MiB message limit, under our 2 MiB."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_a_frame_between_1_and_2_mib_is_accepted_not_dropped(tmp_path, media_root, clinician, session, settings):
    from websockets.sync.client import connect

    from testing.servers import daphne

    jpeg = big_jpeg()
    assert 1024**2 < len(jpeg) < settings.LIVE_FRAME_MAX_BYTES
    token = Token.objects.create(user=clinician).key
    # The embedded worker would analyse it; this test is about the socket, so no model runs.
    with daphne(tmp_path, CELERY_EMBEDDED_WORKER="false") as base:
        url = base.replace("http://", "ws://") + f"/ws/procedures/{session.pk}/live/?token={token}"
        with connect(url, max_size=None, open_timeout=10) as socket:
            assert json.loads(socket.recv(10))["type"] == "hello"
            assert json.loads(socket.recv(10))["type"] == "snapshot"
            socket.send(struct.pack(">Q", 1000) + jpeg)
            while True:
                message = json.loads(socket.recv(10))
                if message["type"] in ("status", "error"):
                    break
    assert message["type"] == "status" and message["received"] == 1, message
