"""An uploaded query: bytes -> 16 kHz mono float32, with the limits a service needs (size, length, silence).

The page sends 16-bit PCM WAV; FLAC and OGG (and whatever else libsndfile reads) work as well. Every
refusal is a :class:`ServiceError` with the HTTP status that fits and a message for the person who
hummed (413: too large or too long, 415: not audio that can be read, 422: silent or too short, 400: empty).

Example
-------
>>> import io, numpy as np, soundfile as sf
>>> buf = io.BytesIO()
>>> sf.write(buf, 0.3 * np.sin(np.arange(32000) / 5.0), 16000, format="WAV")
>>> y = decode_query(buf.getvalue(), max_seconds=30.0)
>>> y.shape, y.dtype
((32000,), dtype('float32'))
>>> decode_query(b"not audio", max_seconds=30.0)
Traceback (most recent call last):
...
chadml.serve.upload.ServiceError: [415] cannot read the upload as audio (send WAV, FLAC or OGG): ...
"""
from __future__ import annotations

import io
import math
import re

import numpy as np
import soundfile as sf

from ..audio import resample, to_mono
from ..config import SAMPLE_RATE
from ..errors import ChadError

__all__ = ["ServiceError", "decode_query", "loudest_dbfs"]


class ServiceError(ChadError):
    """A request the service answers with an error: ``status`` (HTTP) and a one-line ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = int(status), message

    def __str__(self) -> str:
        return f"[{self.status}] {self.message}"


def loudest_dbfs(y: np.ndarray, sr: int = SAMPLE_RATE, frame_s: float = 0.05) -> float:
    """The RMS level (dBFS, a full-scale sine is -3) of the loudest ``frame_s`` frame of ``y``; -inf for silence.

    >>> loudest_dbfs(np.zeros(1600, np.float32))
    -inf
    >>> round(loudest_dbfs(np.full(1600, 0.1, np.float32)), 1)
    -20.0
    """
    n = max(1, int(frame_s * sr))
    k = max(1, len(y) // n)
    frames = np.asarray(y[: k * n] if len(y) >= n else y, dtype=np.float64).reshape(k, -1)
    rms = float(np.sqrt(np.max(np.mean(frames ** 2, axis=1)))) if frames.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def decode_query(data: bytes, *, max_seconds: float, min_seconds: float = 0.5,
                 silence_dbfs: float = -60.0) -> np.ndarray:
    """The upload ``data`` as 16 kHz mono float32; a :class:`ServiceError` when it is empty, unreadable,
    longer than ``max_seconds`` (checked from the header, before decoding), shorter than ``min_seconds``,
    not finite, or silent (its loudest 50 ms below ``silence_dbfs``)."""
    if not data:
        raise ServiceError(400, "the upload is empty: send a recording (WAV, FLAC or OGG)")
    try:
        info = sf.info(io.BytesIO(data))
        duration = info.frames / info.samplerate if info.samplerate > 0 else 0.0
        if duration > max_seconds:
            raise ServiceError(413, f"the recording is {duration:.1f} s long; the limit is {max_seconds:g} s "
                                    "(send a shorter excerpt)")
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except ServiceError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as exc:
        why = re.sub(r"^Error opening <[^>]*>: ", "", str(exc).strip()) or type(exc).__name__
        raise ServiceError(415, f"cannot read the upload as audio (send WAV, FLAC or OGG): {why}") from None
    if y.shape[0] == 0:
        raise ServiceError(422, "the recording holds no samples")
    if not np.isfinite(y).all():
        raise ServiceError(422, "the recording contains NaN or infinite samples")
    y = to_mono(y)
    if sr != SAMPLE_RATE:
        y = resample(y, int(sr), SAMPLE_RATE)
    duration = len(y) / SAMPLE_RATE
    if duration < min_seconds:
        raise ServiceError(422, f"the recording is {duration:.2f} s long; hum at least {min_seconds:g} s")
    level = loudest_dbfs(y)
    if level < silence_dbfs:
        shown = "no sound at all" if level == -math.inf else f"its loudest part is {level:.0f} dBFS"
        raise ServiceError(422, f"the recording is silent ({shown}): check the microphone and hum louder "
                                "or closer")
    return np.ascontiguousarray(y, dtype=np.float32)
