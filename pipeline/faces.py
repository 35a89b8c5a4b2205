"""Face detection with dlib: the built-in HOG frontal detector, or a CNN model file.

HOG cost grows with pixel count (~120 ms on a 1280x720 frame here, ~31 ms at half size),
so frames larger than `max_side` are detected on a downscaled copy and the boxes mapped
back to frame pixels. HOG misses faces under ~80 px, which downscaling can create (DFDC's
1080p clips), so a frame with no face on the small copy is searched again at full size.
Small frames (longest side up to `SMALL_FRAME_SIDE`, CIF and QVGA clips) hold small faces:
when nothing is found there, the frame is searched once more with one more upsampling step
(4x the pixels, so only on frames that would otherwise have no face; `--upsample` would pay
it on every frame). Nothing is downloaded: the CNN detector only loads a model file the
user names.
"""
from __future__ import annotations

from dataclasses import dataclass

import dlib
import numpy as np
from PIL import Image

SMALL_FRAME_SIDE = 400  # px: up to 352x288 CIF and 400x300; VGA and larger are searched as they are


@dataclass(frozen=True)
class Detection:
    """A face box in frame pixels (right/bottom exclusive) with the detector's score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


class FaceDetector:
    """Finds faces in RGB frames; largest first.

    Not picklable in its CNN form, so Beam DoFns build it in `setup()`.
    """

    def __init__(self, upsample: int = 0, max_side: int = 640, cnn_model: str | None = None) -> None:
        self.upsample = upsample
        self.max_side = max_side
        self.cnn_model = cnn_model
        if cnn_model:
            self._cnn = dlib.cnn_face_detection_model_v1(cnn_model)
            self._hog = None
        else:
            self._cnn = None
            self._hog = dlib.get_frontal_face_detector()

    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        scale = min(1.0, self.max_side / max(h, w)) if self.max_side else 1.0
        found = self._detect_at(frame, scale)
        if not found and scale < 1.0:
            found = self._detect_at(frame, 1.0)
        if not found and max(h, w) <= SMALL_FRAME_SIDE:
            found = self._detect_at(frame, 1.0, self.upsample + 1)
        return found

    def _detect_at(self, frame: np.ndarray, scale: float, upsample: int | None = None) -> list[Detection]:
        """Faces found on `frame` resized by `scale` (<= 1), HOG/CNN upsampling `upsample`
        times (default: the detector's own), in frame pixels."""
        upsample = self.upsample if upsample is None else upsample
        h, w = frame.shape[:2]
        small = frame
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
        small = np.ascontiguousarray(small)
        if self._cnn is not None:
            found = [(d.rect, float(d.confidence)) for d in self._cnn(small, upsample)]
        else:
            rects, scores, _ = self._hog.run(small, upsample, 0.0)
            found = list(zip(rects, scores))
        detections = []
        for rect, score in found:
            left = max(0, round(rect.left() / scale))
            top = max(0, round(rect.top() / scale))
            right = min(w, round((rect.right() + 1) / scale))
            bottom = min(h, round((rect.bottom() + 1) / scale))
            if right > left and bottom > top:
                detections.append(Detection(left, top, right, bottom, float(score)))
        detections.sort(key=lambda d: (-d.width * d.height, -d.score, d.left, d.top))
        return detections
