"""Melodies rendered by FluidSynth from the recorded samples of General-MIDI soundfonts.

The same note events as the built-in synthesiser (:mod:`chadml.corpus.voice`) sing, played by programs of a
soundfont, with per-note pitch errors written as MIDI pitch bends, uneven timing and the same room and
background noise as the built-in hummer. Two uses, kept apart by soundfont:

- training: the sampled hum styles (``"sampled"``, ``"instrument"``) play :data:`TRAINING_SOUNDFONTS`
  (Debian: ``apt-get install fluidsynth timgm6mb-soundfont csound-soundfont``), real recorded voices and
  instruments that the numpy singer cannot imitate; :func:`training_soundfonts` refuses the evaluation ones;
- evaluation (``bench/qbh_eval.py``): choir, voice and whistle-like programs of a soundfont training never
  plays (``fluid-soundfont-gm``'s FluidR3 by default, ``$CHAD_SOUNDFONT`` for another), rendered by
  FluidSynth or by TiMidity++ (``engine="timidity"``), an engine training never uses.

Nothing is downloaded: :func:`find_soundfont` looks in the usual system places, and a missing
``fluidsynth`` or soundfont is a :class:`FluidSynthUnavailable` with the install command.

Example
-------
>>> smf = midi_file([60.0, 62.5], [0.0, 0.5], [0.5, 0.5], program=52)
>>> smf[:4], len(smf) > 40
(b'MThd', True)
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from typing import Sequence

import numpy as np

from .. import audio
from ..errors import ChadError

__all__ = ["PROGRAMS", "FluidSynthUnavailable", "find_soundfont", "midi_file", "render_notes", "available",
           "TRAINING_SOUNDFONTS", "EVALUATION_SOUNDFONTS", "TRAINING_VOICES", "TRAINING_INSTRUMENTS",
           "training_soundfonts", "ENGINES", "render_performance"]

# General-MIDI programs (0-based) that stand for a voice humming or singing, or a whistle
PROGRAMS = {"choir_aahs": 52, "voice_oohs": 53, "synth_voice": 54, "whistle": 78, "ocarina": 79,
            "recorder": 74, "flute": 73}
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/soundfonts/default.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")
# The soundfonts release training renders sampled voices with (Debian: timgm6mb-soundfont, csound-soundfont):
# their samples differ from FluidR3's. FluidR3 and MuseScore General (which shares most of FluidR3's voice
# samples) are the evaluation's voice sources: training refuses them.
TRAINING_SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/sf_GMbank.sf2")
EVALUATION_SOUNDFONTS = ("FluidR3", "MuseScore", "default-GM")
# training programs and the octave they sound in (semitones above a sung voice): voice-like samples ...
TRAINING_VOICES = {52: 0, 53: 0, 54: 0, 78: 12, 79: 24, 85: 0, 91: 0}   # TimGM6mb's whistle stops near C7
# ... and melodic instruments (one line, no chords): a melody in any timbre is the same melody
TRAINING_INSTRUMENTS = {40: 0, 41: 0, 42: -12, 56: 0, 57: -12, 60: 0, 64: 12, 65: 0, 66: 0, 68: 0, 69: 0,
                        70: -12, 71: 0, 72: 12, 73: 12, 74: 12, 75: 12, 77: 12, 80: 0, 81: 0, 21: 0, 22: 0}
_TPQ = 480            # ticks per quarter note; tempo 120 bpm -> 960 ticks per second
_TICKS_PER_S = 960.0
_BEND_RANGE = 2.0     # semitones (the GM default)


class FluidSynthUnavailable(ChadError):
    """fluidsynth or a General-MIDI soundfont is not installed."""


def find_soundfont(path: str | None = None) -> str:
    """The soundfont to use: ``path``, ``$CHAD_SOUNDFONT``, or the first system General-MIDI soundfont."""
    for cand in ([path] if path else []) + [os.environ.get("CHAD_SOUNDFONT", "")] + list(SOUNDFONTS):
        if cand and os.path.isfile(cand):
            return cand
    if path:
        raise FluidSynthUnavailable(f"soundfont not found: {path}")
    raise FluidSynthUnavailable("no General-MIDI soundfont found (apt-get install fluid-soundfont-gm, or set "
                                "CHAD_SOUNDFONT)")


def training_soundfonts() -> tuple[str, ...]:
    """The installed :data:`TRAINING_SOUNDFONTS` (``$CHAD_TRAIN_SOUNDFONTS``, ``:``-separated, replaces
    the list); an evaluation soundfont (:data:`EVALUATION_SOUNDFONTS`, also through a link) is refused,
    and none installed is a :class:`FluidSynthUnavailable` with the install command."""
    env = os.environ.get("CHAD_TRAIN_SOUNDFONTS", "")
    cands = [c for c in env.split(":") if c] if env else list(TRAINING_SOUNDFONTS)
    for c in cands:
        real = os.path.basename(os.path.realpath(c))
        if any(e.lower() in os.path.basename(c).lower() or e.lower() in real.lower() for e in EVALUATION_SOUNDFONTS):
            raise FluidSynthUnavailable(f"CHAD_TRAIN_SOUNDFONTS: {c} is an evaluation voice source; training "
                                        f"never renders with {', '.join(EVALUATION_SOUNDFONTS)}")
    found = tuple(c for c in cands if os.path.isfile(c))
    if shutil.which("fluidsynth") is None or not found:
        raise FluidSynthUnavailable("the sampled training voices need fluidsynth and a training soundfont "
                                    "(apt-get install fluidsynth timgm6mb-soundfont csound-soundfont)")
    return found


def available() -> bool:
    """Whether :func:`render_notes` can run here (fluidsynth on PATH and a soundfont)."""
    try:
        find_soundfont()
    except FluidSynthUnavailable:
        return False
    return shutil.which("fluidsynth") is not None


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_file(pitch: Sequence[float], onset: Sequence[float], dur: Sequence[float], *, program: int = 52,
              velocity: Sequence[int] | int = 96) -> bytes:
    """A type-0 standard MIDI file of monophonic notes (fractional MIDI pitch as a pitch bend per note).

    ``onset`` and ``dur`` in seconds (tempo 120 bpm, 960 ticks per second)."""
    pitch, onset, dur = (np.asarray(x, np.float64) for x in (pitch, onset, dur))
    if not (pitch.shape == onset.shape == dur.shape and pitch.ndim == 1):
        raise ValueError("pitch, onset and dur must be 1-D arrays of one length")
    if not 0 <= int(program) <= 127:
        raise ValueError(f"program must be a General-MIDI program 0-127, got {program!r}")
    vel = np.broadcast_to(np.asarray(velocity, np.int64), pitch.shape)
    events: list[tuple[int, int, bytes]] = []   # (tick, order, bytes): note-offs before note-ons at a tick
    for p, o, d, v in zip(pitch, onset, dur, vel):
        if not np.isfinite(p) or d <= 0:
            continue
        key = int(np.clip(round(p), 0, 127))
        bend = int(np.clip(round(8192 + (p - key) / _BEND_RANGE * 8192), 0, 16383))
        t0, t1 = int(round(o * _TICKS_PER_S)), int(round((o + d) * _TICKS_PER_S))
        if t1 <= t0:
            continue
        events.append((t0, 1, bytes([0xE0, bend & 0x7F, bend >> 7])))
        events.append((t0, 2, bytes([0x90, key, int(np.clip(v, 1, 127))])))
        events.append((t1, 0, bytes([0x80, key, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    track = bytearray()
    track += _vlq(0) + b"\xff\x51\x03" + (500000).to_bytes(3, "big")      # 120 bpm
    track += _vlq(0) + bytes([0xC0, int(program)])
    last = 0
    for tick, _, msg in events:
        track += _vlq(tick - last) + msg
        last = tick
    track += _vlq(0) + b"\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, _TPQ) + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))


_INSTALL = {"fluidsynth": "apt-get install fluidsynth fluid-soundfont-gm", "timidity": "apt-get install timidity"}
ENGINES = tuple(_INSTALL)


def render_notes(pitch, onset, dur, total: float, *, program: int = 52, sr: int = audio.SR,
                 soundfont: str | None = None, velocity=96, engine: str = "fluidsynth") -> np.ndarray:
    """Render monophonic notes to a float32 mono signal of ``total`` seconds at ``sr``.

    ``engine``: ``"fluidsynth"`` (training and evaluation) or ``"timidity"`` (TiMidity++, another
    sample-playback engine with its own envelopes, interpolation and effects: evaluation only, so that a
    query set shares no rendering code with training)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    exe = shutil.which(engine)
    if exe is None:
        raise FluidSynthUnavailable(f"{engine} is not installed ({_INSTALL[engine]})")
    sf2 = find_soundfont(soundfont)
    smf = midi_file(pitch, onset, dur, program=program, velocity=velocity)
    with tempfile.TemporaryDirectory(prefix="chad-fluid-") as d:
        mid, wav = os.path.join(d, "x.mid"), os.path.join(d, "x.wav")
        with open(mid, "wb") as f:
            f.write(smf)
        render_sr = 44100
        if engine == "fluidsynth":
            cmd = [exe, "-ni", "-q", "-g", "0.6", "-r", str(render_sr), "-F", wav, sf2, mid]
        else:
            cmd = [exe, "-x", f"soundfont {sf2}", "-Ow", "--output-mono", "-s", str(render_sr), "-o", wav, mid]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not os.path.exists(wav):
            raise ChadError(f"{engine} failed: {(proc.stderr or proc.stdout).strip()[:200]}")
        y = audio.load(wav, sr=sr)
    n = int(round(total * sr))
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    return y.astype(np.float32, copy=False)


def render_performance(notes, total: float, *, program: int, transpose: float = 0.0, **kw) -> np.ndarray:
    """:func:`render_notes` of a performance (:class:`chadml.corpus.Notes`, e.g. an amateur's): each note
    held from its onset to where its sound ends (at least 50 ms), its gain as the velocity (40-127),
    ``transpose`` semitones added; ``kw``: ``sr``, ``soundfont``, ``engine``."""
    return render_notes(np.asarray(notes.pitch) + transpose, notes.onset,
                        np.maximum(notes.sound_end - notes.onset, 0.05), total, program=program,
                        velocity=np.clip(96 * np.asarray(notes.gain), 40, 127).astype(int), **kw)
