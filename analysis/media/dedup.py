"""Near-duplicate frames: a still scope produces the same picture second after second.

Perceptual hash (``imagehash.phash``: 64-bit DCT hash of a 32x32 grayscale thumbnail),
compared by Hamming distance with the hashes of the last ``window`` frames that were kept.

``check`` only looks; ``keep`` records. They are separate so that the caller decides what
enters the window: the gate keeps a hash only for frames it actually passes on, so a blurry
or dark frame never becomes the reference that later good frames are compared with.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import imagehash
import numpy as np
from PIL import Image

# phash distances between re-encodings/sensor noise of one view are ~0-4 of 64 bits; a
# different view or a clear scope movement is typically > 10. 6 leaves margin for noise
# without merging views that merely share a layout.
DEFAULT_MAX_DISTANCE = 6
# Compare with the last 8 kept frames (~8 s at one frame per second): catches the scope
# returning to a view it just showed, without suppressing a revisit minutes later.
DEFAULT_WINDOW = 8


class DedupResult(NamedTuple):
    is_duplicate: bool
    hash_hex: str
    distance: int | None  # to the closest kept hash in the window; None when it is empty


class NearDuplicateFilter:
    def __init__(self, max_distance: int = DEFAULT_MAX_DISTANCE, window: int = DEFAULT_WINDOW) -> None:
        if max_distance < 0:
            raise ValueError("max_distance must be >= 0")
        if window < 1:
            raise ValueError("window must be >= 1")
        self.max_distance = max_distance
        self.window = window
        self._kept: deque[imagehash.ImageHash] = deque(maxlen=window)

    @staticmethod
    def hash_image(image: np.ndarray | Image.Image) -> imagehash.ImageHash:
        pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        return imagehash.phash(pil)

    def check(self, image: np.ndarray | Image.Image) -> DedupResult:
        """Is ``image`` within ``max_distance`` of a kept frame? Does not change the window."""
        h = self.hash_image(image)
        distance = min((h - kept for kept in self._kept), default=None)
        is_dup = distance is not None and distance <= self.max_distance
        return DedupResult(is_dup, str(h), None if distance is None else int(distance))

    def keep(self, image_hash: str | imagehash.ImageHash) -> None:
        """Record a kept frame's hash (as returned in ``DedupResult.hash_hex``)."""
        if isinstance(image_hash, str):
            image_hash = imagehash.hex_to_hash(image_hash)
        self._kept.append(image_hash)

    def check_and_keep(self, image: np.ndarray | Image.Image) -> DedupResult:
        """``check``, then ``keep`` the hash unless it is a duplicate."""
        result = self.check(image)
        if not result.is_duplicate:
            self.keep(result.hash_hex)
        return result

    def reset(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
