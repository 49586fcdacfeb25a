import io

import numpy as np
import pytest
from PIL import Image

from analysis.media.jpeg import InvalidImage, decode_jpeg, encode_jpeg

from .images import textured_scene


def _smooth(h=120, w=160):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 128)]).astype(np.uint8)


def test_round_trip_keeps_the_picture():
    image = _smooth()
    data = encode_jpeg(image)
    assert data[:3] == b"\xff\xd8\xff"
    back = decode_jpeg(data)
    assert back.shape == image.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 3


def test_quality_trades_size_for_fidelity():
    image = textured_scene(5)
    small, large = encode_jpeg(image, quality=30), encode_jpeg(image, quality=95)
    assert len(small) < len(large)
    err = lambda d: np.abs(decode_jpeg(d).astype(int) - image.astype(int)).mean()
    assert err(large) < err(small)


def test_max_side_shrinks_but_never_enlarges():
    assert decode_jpeg(encode_jpeg(_smooth(), max_side=80)).shape == (60, 80, 3)
    assert decode_jpeg(encode_jpeg(_smooth(), max_side=1000)).shape == (120, 160, 3)


def test_gray_images_are_accepted():
    assert decode_jpeg(encode_jpeg(np.full((10, 12), 99, np.uint8))).shape == (10, 12, 3)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros(5, np.uint8)])
def test_it_rejects_arrays_that_are_not_images(bad):
    with pytest.raises(ValueError, match="expected"):
        encode_jpeg(bad)


@pytest.mark.parametrize("quality", [0, 96])
def test_it_rejects_out_of_range_quality(quality):
    with pytest.raises(ValueError):
        encode_jpeg(_smooth(), quality=quality)


def test_decode_rejects_non_jpegs_truncation_and_huge_images():
    png = io.BytesIO()
    Image.fromarray(_smooth()).save(png, format="PNG")
    with pytest.raises(InvalidImage, match="not a JPEG"):
        decode_jpeg(png.getvalue())
    with pytest.raises(InvalidImage, match="empty"):
        decode_jpeg(b"")
    data = encode_jpeg(_smooth())
    with pytest.raises(InvalidImage, match="could not be decoded"):
        decode_jpeg(data[: len(data) // 3])
    with pytest.raises(InvalidImage, match="at most 1000 pixels"):
        decode_jpeg(data, max_pixels=1000)


def test_the_quick_check_refuses_what_the_full_decode_refuses_and_reads_the_size():
    from analysis.media.jpeg import check_jpeg

    data = encode_jpeg(_smooth())
    assert check_jpeg(data) == (160, 120)
    png = io.BytesIO()
    Image.fromarray(_smooth()).save(png, "PNG")
    for bad in (png.getvalue(), b"", data[: len(data) // 3], data[:2] + b"\x00" * 50):
        with pytest.raises(InvalidImage):
            check_jpeg(bad)
    with pytest.raises(InvalidImage, match="pixels"):
        check_jpeg(data, max_pixels=1000)
