"""The rough edges a new user meets (issue 14, part B): `chad index build` on an existing or killed index,
`chad evaluate` against an index with none of the truth's songs, the demo's honesty about --quick, and the
smaller items (flags named in errors, --device, a missing FAISS file, bad checkpoints, formats, Ctrl-C of
`index add`, -q after the command, long queries read in part, hidden files, help texts)."""
from __future__ import annotations

import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")


def _tone(seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


# ---- audio files: formats, hidden files ----------------------------------------------------------------

#: the container (and subtype) soundfile writes for each extension of AUDIO_EXTENSIONS
_FORMATS = {".wav": ("WAV", None), ".flac": ("FLAC", None), ".mp3": ("MP3", None), ".ogg": ("OGG", "VORBIS"),
            ".oga": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".aiff": ("AIFF", None), ".aif": ("AIFF", None),
            ".au": ("AU", None)}


def test_every_listed_audio_extension_is_readable(tmp_path):
    import soundfile as sf
    from chadml import audio
    from chadml.index import AUDIO_EXTENSIONS
    assert ".m4a" not in AUDIO_EXTENSIONS            # soundfile cannot read AAC: not offered
    assert set(AUDIO_EXTENSIONS) == set(_FORMATS)
    for ext, (fmt, subtype) in _FORMATS.items():
        p = tmp_path / f"x{ext}"
        sr = 48000 if subtype == "OPUS" else 16000
        sf.write(str(p), _tone(1.0, sr), sr, format=fmt, subtype=subtype)
        y = audio.load(p)
        assert abs(len(y) - 16000) < 2000 and np.max(np.abs(y)) > 0.1, ext


def test_hidden_and_appledouble_files_are_not_songs(tmp_path):
    from chadml import audio
    from chadml.index import find_audio_files, song_items
    audio.save(str(tmp_path / "a.flac"), _tone())
    (tmp_path / "._a.flac").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)    # macOS AppleDouble
    (tmp_path / ".hidden.wav").write_bytes(b"RIFF")
    for d in (".git", "__MACOSX", "sub"):
        (tmp_path / d).mkdir()
        audio.save(str(tmp_path / d / "b.flac"), _tone())
    assert [os.path.relpath(p, tmp_path) for p in find_audio_files(tmp_path)] == ["a.flac", os.path.join("sub", "b.flac")]
    assert [i[0] for i in song_items(tmp_path)] == ["a", "b"]
