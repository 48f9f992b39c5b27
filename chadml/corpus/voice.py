"""The voice synthesiser of the built-in corpus: a numpy singer (:func:`render`) and an amateur hummer (:func:`hum`).

A :class:`Singer` holds the voice (formant scale, vibrato, jitter, shimmer, breathiness, glides);
:class:`Notes` the note events of one performance in seconds. :func:`render` sings them: a harmonic
source shaped by four vowel formants and a spectral tilt, computed on a 500 Hz control grid.
:func:`hum` turns a stretch of a performance into a humming (``mm`` timbre, pitch errors, drift, uneven
timing, a room and background noise).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = render(Notes([0.1], [0.5], [60.0]), Singer.random(rng), 1.0, rng)
>>> y.shape, y.dtype
((16000,), dtype('float32'))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import audio
from . import fluid

__all__ = ["VOWELS", "VOWEL_NAMES", "HOP", "Singer", "Notes", "render", "hum", "HUM_STYLES", "CHOIR_VOICES", "WHISTLE_SHIFT",
           "hummer_voice", "choir", "SAMPLED_STYLES", "phone_channel", "room_and_noise", "amateur_notes"]

# vowel formants (Hz) and bandwidths for an adult male voice; singers scale them (women ~1.15)
VOWELS = {
    "a": ((730, 1090, 2440, 3400), (90, 110, 140, 200), (0.0, -5.0, -14.0, -20.0)),
    "e": ((530, 1840, 2480, 3500), (70, 110, 140, 200), (0.0, -9.0, -12.0, -20.0)),
    "i": ((300, 2290, 3010, 3500), (60, 120, 150, 200), (0.0, -14.0, -10.0, -20.0)),
    "o": ((570, 840, 2410, 3400), (80, 90, 140, 200), (0.0, -3.0, -20.0, -26.0)),
    "u": ((320, 870, 2240, 3400), (60, 90, 140, 200), (0.0, -8.0, -24.0, -30.0)),
    # the nasal murmur of humming ("mm"): one low resonance, weak highs
    "m": ((260, 1100, 2300, 3300), (60, 300, 300, 300), (0.0, -24.0, -30.0, -36.0)),
}
VOWEL_NAMES = tuple(VOWELS)
_VF = np.array([VOWELS[v][0] for v in VOWEL_NAMES], np.float64)
_VB = np.array([VOWELS[v][1] for v in VOWEL_NAMES], np.float64)
_VG = 10 ** (np.array([VOWELS[v][2] for v in VOWEL_NAMES], np.float64) / 20)
HOP = 32                   # control-rate hop (samples): 500 Hz at 16 kHz


@dataclass
class Singer:
    """Voice parameters of one synthetic performer (a singer, or a hummer)."""

    centre: float           # comfortable median MIDI pitch
    formant_scale: float    # 1.0 male .. ~1.2 female
    vib_rate: float         # Hz
    vib_depth: float        # cents (peak)
    vib_delay: float        # s into a note before vibrato
    jitter: float           # cents (sd of slow random f0 wobble)
    shimmer: float          # dB (sd of amplitude wobble)
    breathiness: float      # aspiration noise level (linear, re voice)
    tilt: float             # source spectral tilt, dB per octave
    glide: float            # portamento time constant, s
    scoop: float            # cents below target at a phrase onset
    vowels: tuple = ("a", "o")
    n_harmonics: int = 24
    legato_dip: float = 0.25

    @classmethod
    def random(cls, rng: np.random.Generator, *, hummer: bool = False) -> "Singer":
        female = rng.random() < 0.5
        if hummer:
            return cls(centre=(60.0 if female else 50.0) + rng.uniform(-3, 3),
                       formant_scale=(1.12 if female else 1.0) * rng.uniform(0.95, 1.05),
                       vib_rate=rng.uniform(4.0, 6.0), vib_depth=rng.uniform(0, 15), vib_delay=0.3,
                       jitter=rng.uniform(8, 20), shimmer=rng.uniform(0.5, 1.5), breathiness=rng.uniform(0.02, 0.06),
                       tilt=rng.uniform(-16, -11), glide=rng.uniform(0.04, 0.09), scoop=rng.uniform(20, 80),
                       vowels=("m",), n_harmonics=int(rng.integers(6, 11)), legato_dip=rng.uniform(0.05, 0.2))
        n_v = int(rng.integers(2, 5))
        vowels = tuple(rng.choice(["a", "e", "i", "o", "u"], size=n_v, replace=False))
        return cls(centre=(67.0 if female else 55.0) + rng.uniform(-3, 3),
                   formant_scale=(1.17 if female else 1.0) * rng.uniform(0.95, 1.06),
                   vib_rate=rng.uniform(4.8, 6.4), vib_depth=rng.uniform(15, 60), vib_delay=rng.uniform(0.12, 0.3),
                   jitter=rng.uniform(3, 9), shimmer=rng.uniform(0.2, 0.8), breathiness=rng.uniform(0.005, 0.03),
                   tilt=rng.uniform(-11, -6), glide=rng.uniform(0.015, 0.05), scoop=rng.uniform(0, 40),
                   vowels=vowels, n_harmonics=24, legato_dip=rng.uniform(0.1, 0.35))


@dataclass
class Notes:
    """A performance as note events in seconds (``sound_end`` <= ``onset + dur``: the sung part)."""

    onset: np.ndarray
    dur: np.ndarray
    pitch: np.ndarray          # MIDI (NaN rest)
    sound_end: np.ndarray = None
    gain: np.ndarray = None    # linear

    def __post_init__(self):
        self.onset = np.asarray(self.onset, np.float64)
        self.dur = np.asarray(self.dur, np.float64)
        self.pitch = np.asarray(self.pitch, np.float64)
        if self.sound_end is None:
            self.sound_end = self.onset + self.dur
        if self.gain is None:
            self.gain = np.ones(len(self.onset))

    def __len__(self):
        return len(self.onset)

    def take(self, mask) -> "Notes":
        return Notes(self.onset[mask], self.dur[mask], self.pitch[mask], self.sound_end[mask], self.gain[mask])


def _onepole(x: np.ndarray, tau_frames: float, zero_phase: bool = False) -> np.ndarray:
    from scipy.signal import filtfilt, lfilter
    if tau_frames <= 0:
        return x
    a = math.exp(-1.0 / tau_frames)
    if zero_phase:
        return filtfilt([1 - a], [1, -a], x, padlen=min(len(x) - 1, int(3 * tau_frames) + 1))
    return lfilter([1 - a], [1, -a], x, zi=[x[0] * a] if len(x) else None)[0] if len(x) else x


def _smooth_noise(rng: np.random.Generator, n: int, tau_frames: float) -> np.ndarray:
    """Unit-variance low-pass noise (one-pole)."""
    x = _onepole(rng.standard_normal(n + int(5 * tau_frames)), tau_frames)[int(5 * tau_frames):]
    s = x.std()
    return x / s if s > 0 else x


def _harmonic_sum(A: np.ndarray, ph: np.ndarray, bufs: list) -> np.ndarray:
    """``sum_k A[k-1, f] * sin(k * ph[f, s])`` for k = 1..K by Clenshaw's recurrence (3 array ops a harmonic).

    ``A``: (K, frames) amplitudes, constant within a frame; ``ph``: (frames, hop) phases; ``bufs``: three
    float32 work arrays shaped like ``ph``. With b_{K+1} = b_{K+2} = 0 and
    b_k = A_k + 2 cos(ph) b_{k+1} - b_{k+2}, the sum is b_1 sin(ph).
    """
    c2 = (2 * np.cos(ph)).astype(np.float32)
    b0, b1, b2 = bufs
    b1.fill(0.0)
    b2.fill(0.0)
    for k in range(A.shape[0] - 1, -1, -1):
        np.multiply(c2, b1, out=b0)
        b0 -= b2
        b0 += A[k][:, None]
        b0, b1, b2 = b2, b0, b1
    return b1 * np.sin(ph).astype(np.float32)


def render(notes: Notes, singer: Singer, total: float, rng: np.random.Generator, *, sr: int = audio.SR,
           vowel_seq: np.ndarray | None = None, drift_cents: float = 0.0) -> np.ndarray:
    """Sing ``notes`` with ``singer``: a float32 signal of ``total`` seconds (not normalised).

    The voice: a harmonic source (sum of harmonics by Chebyshev recursion, up to 0.45 ``sr``) whose
    harmonic amplitudes follow a four-formant vowel envelope and a spectral tilt, f0 with glides
    (zero-phase smoothing), onset scoops, delayed vibrato, jitter and optional slow drift; per-note
    attack/release envelopes (legato notes dip, separated notes start from silence), shimmer, and
    aspiration noise. Everything is computed on a 500 Hz control grid and per sample with numpy.
    """
    n_samp = int(round(total * sr))
    nf = n_samp // HOP + 3
    tc = np.arange(nf) * (HOP / sr)
    frame_rate = sr / HOP
    y = np.zeros(n_samp, np.float32)
    if len(notes) == 0 or n_samp == 0:
        return y
    on, se, pitch, gain = notes.onset, notes.sound_end, notes.pitch, notes.gain
    voiced_note = ~np.isnan(pitch) & (se > on + 1e-3)
    idx = np.searchsorted(on, tc, side="right") - 1
    valid = idx >= 0
    idc = np.clip(idx, 0, len(on) - 1)
    since = tc - on[idc]
    until = se[idc] - tc
    in_note = valid & voiced_note[idc] & (until > 0)
    # pitch contour: rests take the previous note's pitch (amplitude is zero there anyway)
    good = ~np.isnan(pitch)
    if not good.any():
        return y
    fill_idx = np.maximum.accumulate(np.where(good, np.arange(len(pitch)), -1))
    pf = np.where(fill_idx >= 0, pitch[np.maximum(fill_idx, 0)], pitch[good][0])
    # legato: a note that starts where the previous sung note ends
    prev_end = np.concatenate([[-1.0], se[:-1]])
    prev_voiced = np.concatenate([[False], voiced_note[:-1]])
    legato = prev_voiced & (on - prev_end < 0.02)
    next_legato = np.concatenate([legato[1:], [False]])
    p = _onepole(pf[idc], singer.glide * frame_rate, zero_phase=True)
    cents = np.zeros(nf)
    # scoop into notes that start a phrase
    sc = np.where(valid & ~legato[idc], -singer.scoop * np.exp(-np.maximum(since, 0) / 0.07), 0.0)
    cents += sc
    # vibrato with a delayed onset on each note and a slightly wandering rate
    rate = singer.vib_rate * (1 + 0.06 * _smooth_noise(rng, nf, 0.5 * frame_rate))
    vph = 2 * np.pi * np.cumsum(rate) / frame_rate + rng.uniform(0, 2 * np.pi)
    vdepth = singer.vib_depth * np.clip((since - singer.vib_delay) / 0.3, 0, 1)
    cents += vdepth * np.sin(vph)
    cents += singer.jitter * _smooth_noise(rng, nf, 0.03 * frame_rate)
    if drift_cents:
        d = np.cumsum(rng.standard_normal(nf))
        d = _onepole(d - d.mean(), 1.5 * frame_rate, zero_phase=True)
        m = np.max(np.abs(d))
        cents += drift_cents * d / m if m > 0 else 0
    f0 = 440.0 * 2 ** ((p + cents / 100 - 69) / 12)
    # amplitude envelope
    att = np.where(legato[idc], 1 - singer.legato_dip * np.exp(-np.maximum(since, 0) / 0.035),
                   np.clip(since / 0.04, 0, 1))
    rel = np.where(next_legato[idc], 1.0, np.clip(until / 0.05, 0, 1))
    sustain = 1 - 0.12 * np.clip(since / 2.0, 0, 1)
    env = np.where(in_note, att * rel * sustain * gain[idc], 0.0)
    env *= 10 ** (singer.shimmer * _smooth_noise(rng, nf, 0.02 * frame_rate) / 20)
    env = _onepole(env, 0.004 * frame_rate)
    env[~in_note & (env < 1e-3)] = 0.0
    # vowel per note -> formant tracks
    if vowel_seq is None:
        vi = np.array([VOWEL_NAMES.index(v) for v in singer.vowels])
        choice = rng.integers(0, len(vi), len(on))
        vowel_seq = vi[choice]
    onehot = np.zeros((len(VOWEL_NAMES), nf))
    onehot[vowel_seq[idc], np.arange(nf)] = 1.0
    from scipy.signal import filtfilt
    a = math.exp(-1.0 / (0.04 * frame_rate))
    w = filtfilt([1 - a], [1, -a], onehot, axis=1, padlen=min(nf - 1, 30))
    F = (w.T @ _VF) * singer.formant_scale            # (nf, 4)
    B = w.T @ _VB
    G = w.T @ _VG
    # harmonic amplitudes on the control grid: (K, nf)
    nyq = 0.45 * sr
    K = int(min(singer.n_harmonics, max(1, nyq // max(np.min(f0[in_note]) if in_note.any() else 100.0, 50.0))))
    # the spectrum is smooth in time: compute it every 4th frame (8 ms) and interpolate linearly
    dec = 4
    fi = np.arange(0, nf + dec, dec).clip(max=nf - 1)
    k = np.arange(1, K + 1, dtype=np.float32)[:, None]
    fk = k * f0[fi].astype(np.float32)[None, :]
    spec = np.full_like(fk, 0.003)
    for j in range(4):
        x = (fk - F[fi, j][None, :].astype(np.float32)) * (2.0 / B[fi, j][None, :].astype(np.float32))
        spec += G[fi, j][None, :].astype(np.float32) / (1 + x * x)
    spec *= np.exp2((singer.tilt / 6.0206) * np.log2(np.maximum(fk, 20.0) / 200.0)).astype(np.float32)
    spec *= np.clip((nyq - fk) / (0.05 * sr), 0, 1)            # fade out harmonics near the band edge
    spec /= np.maximum(np.sqrt((spec ** 2).sum(axis=0, keepdims=True)), 1e-9)   # loudness from env only
    pos = np.arange(nf) / dec
    i0 = np.minimum(pos.astype(np.int64), len(fi) - 2)
    wt = (pos - i0).astype(np.float32)
    A = spec[:, i0] * (1 - wt) + spec[:, i0 + 1] * wt
    A *= env.astype(np.float32)[None, :]
    # per sample, in chunks of whole control frames: amplitudes constant per frame (they are smooth),
    # f0 linearly interpolated, harmonics by the Chebyshev recursion sin((k+1)x) = 2cos(x)sin(kx) - sin((k-1)x)
    frames_total = n_samp // HOP + 1
    chunk_frames = 512
    phase0 = rng.uniform(0, 2 * np.pi)
    out = np.zeros(frames_total * HOP, np.float32)
    frac = (np.arange(HOP) / HOP)[None, :]
    bufs = [np.empty((chunk_frames, HOP), np.float32) for _ in range(3)]
    for c0 in range(0, frames_total, chunk_frames):
        c1 = min(frames_total, c0 + chunk_frames)
        nfr = c1 - c0
        f_s = (f0[c0:c1, None] + frac * (f0[c0 + 1:c1 + 1, None] - f0[c0:c1, None])).ravel()
        ph = phase0 + (2 * np.pi / sr) * np.cumsum(f_s)
        phase0 = float(ph[-1] % (2 * np.pi))
        out[c0 * HOP:c1 * HOP] = _harmonic_sum(A[:, c0:c1], ph.reshape(nfr, HOP), [b[:nfr] for b in bufs]).ravel()
    y = out[:n_samp]
    # aspiration noise, following the envelope, high-passed
    if singer.breathiness > 0:
        env_s = np.repeat(env.astype(np.float32), HOP)[:n_samp]
        nz = rng.standard_normal(n_samp, dtype=np.float32)
        nz[1:] -= 0.9 * nz[:-1]
        nz *= env_s
        nz *= singer.breathiness
        y += nz
    return y.astype(np.float32)



def _room(y: np.ndarray, rng, sr: int) -> np.ndarray:
    from scipy.signal import fftconvolve
    rt60 = rng.uniform(0.15, 0.5)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / rng.uniform(0.15, 0.4)         # direct-to-reverberant ratio
    rir /= np.sqrt((rir ** 2).sum())
    return fftconvolve(y, rir)[:len(y)].astype(np.float32)


def _background(n: int, rng, sr: int) -> np.ndarray:
    from scipy.signal import lfilter
    w = rng.standard_normal(n)
    brown = lfilter([1.0], [1, -0.98], w)
    x = 0.6 * brown / (brown.std() + 1e-12) + 0.4 * w
    if rng.random() < 0.3:                        # mains hum
        t = np.arange(n) / sr
        f = rng.choice([50.0, 60.0])
        x = x + 0.5 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 3 * f * t)
    return (x / (x.std() + 1e-12)).astype(np.float32)


HUM_STYLES = ("mm", "oo", "la", "da", "na", "doo", "whistle", "choir", "sampled", "instrument")
SAMPLED_STYLES = ("sampled", "instrument")   # rendered by FluidSynth from recorded samples (fluid.py)
CHOIR_VOICES = (3, 6)     # a "choir" query: this many voices (inclusive) in unison
WHISTLE_SHIFT = 24.0      # a whistle sounds about two octaves above a sung voice (0.8-2 kHz)


def hummer_voice(rng: np.random.Generator, style: str = "mm") -> Singer:
    """The voice of an amateur query: ``"mm"`` (closed-mouth humming, the paper's H part), sung syllables
    ``"oo"``, ``"la"``, ``"da"``, ``"na"``, ``"doo"`` (a re-articulated onset on every note), or ``"whistle"``
    (an almost pure tone with breath noise); ``"choir"`` gives one voice of the ensemble (:func:`choir`)."""
    if style not in HUM_STYLES:
        raise ValueError(f"style must be one of {HUM_STYLES}, got {style!r}")
    if style in SAMPLED_STYLES:
        raise ValueError(f"style {style!r} is a sampled voice (hum renders it with FluidSynth), not a Singer")
    v = Singer.random(rng, hummer=True)
    if style == "mm":
        return v
    if style == "whistle":
        v.n_harmonics = int(rng.integers(1, 3))
        v.vowels = ("u",)
        v.breathiness = float(rng.uniform(0.03, 0.12))
        v.vib_depth = float(rng.uniform(0, 25))
        v.scoop = float(rng.uniform(0, 60))
        v.legato_dip = float(rng.uniform(0.1, 0.6))
        return v
    if style == "choir":
        v = Singer.random(rng)
        v.vib_depth = float(rng.uniform(0, 30))
        v.glide = float(rng.uniform(0.03, 0.08))
        return v
    vowels = {"oo": ("u",), "la": ("a",), "da": ("a", "o"), "na": ("m", "a"), "doo": ("u", "o")}[style]
    v.vowels = vowels
    v.n_harmonics = int(rng.integers(12, 25))
    v.tilt = float(rng.uniform(-12, -6))
    v.vib_depth = float(rng.uniform(0, 45))
    v.breathiness = float(rng.uniform(0.005, 0.05))
    v.legato_dip = 0.9 if style in ("da", "doo") else float(rng.uniform(0.5, 0.9))
    return v


def phone_channel(y: np.ndarray, rng: np.random.Generator, sr: int = audio.SR) -> np.ndarray:
    """What a cheap microphone or a phone line does: band limits (300-3400 Hz at most), soft clipping."""
    from scipy.signal import butter, sosfilt
    lo, hi = float(rng.uniform(80, 300)), float(rng.uniform(3400, 7000))
    y = sosfilt(butter(2, [lo, min(hi, 0.45 * sr)], btype="band", fs=sr, output="sos"), y).astype(np.float32)
    if rng.random() < 0.5:
        drive = float(rng.uniform(1.5, 6.0))
        peak = float(np.max(np.abs(y))) or 1.0
        y = (np.tanh(drive * y / peak) * peak / np.tanh(drive)).astype(np.float32)
    return y


def hum(notes: Notes, fs: float, fe: float, key_shift: float, rng, sr: int = audio.SR, *,
        style: str = "mm", channel: bool = False) -> np.ndarray:
    """An amateur's humming of the original's notes in ``[fs, fe)``, ``fe - fs`` seconds long, aligned.

    ``style``: the voice (:func:`hummer_voice`; a whistle is :data:`WHISTLE_SHIFT` semitones higher);
    ``channel``: also a phone-like channel (:func:`phone_channel`)."""
    L = fe - fs
    if style in SAMPLED_STYLES:
        return _sampled(notes, fs, fe, key_shift, rng, sr, style, channel)
    hn = amateur_notes(notes, fs, fe, key_shift + (WHISTLE_SHIFT if style == "whistle" else 0.0), rng)
    if style == "choir":
        y = choir(hn, L, rng, sr)
    else:
        hummer = hummer_voice(rng, style) if style != "mm" else Singer.random(rng, hummer=True)
        y = render(hn, hummer, L, rng, sr=sr, drift_cents=rng.uniform(20, 70))
    if channel:
        y = phone_channel(y, rng, sr)
    return room_and_noise(y, rng, sr)


def _sampled(notes: Notes, fs: float, fe: float, key_shift: float, rng, sr: int, style: str,
             channel: bool) -> np.ndarray:
    """:func:`hum` for the sampled styles: the amateur's notes played by FluidSynth with a General-MIDI
    voice (``"sampled"``: choir, voice, whistle-like programs) or melodic instrument (``"instrument"``)
    of a training soundfont (:func:`chadml.corpus.fluid.training_soundfonts`), in that program's octave."""
    sf2 = fluid.training_soundfonts()
    table = fluid.TRAINING_VOICES if style == "sampled" else fluid.TRAINING_INSTRUMENTS
    progs = sorted(table)
    program = progs[int(rng.integers(len(progs)))]
    soundfont = sf2[int(rng.integers(len(sf2)))]
    hn = amateur_notes(notes, fs, fe, key_shift + table[program], rng)
    y = fluid.render_performance(hn, fe - fs, program=program, sr=sr, soundfont=soundfont)
    if len(hn.pitch) and not np.any(np.abs(y) > 1e-4):   # a program without samples in this register
        y = fluid.render_performance(hn, fe - fs, program=53, transpose=-table[program], sr=sr, soundfont=soundfont)
    if channel:
        y = phone_channel(y, rng, sr)
    return room_and_noise(y, rng, sr)


def choir(notes: Notes, total: float, rng: np.random.Generator, sr: int = audio.SR) -> np.ndarray:
    """A small ensemble singing ``notes`` in unison on one open vowel: :data:`CHOIR_VOICES` trained voices
    (men and women, each with its own vibrato), each a few cents off and a few tens of ms early or late.
    What the solo voices lack and a choir's "aah" has: a fundamental well under the vowel's first formant
    (~700 Hz), and the beating and smeared onsets of several voices (not normalised)."""
    lo, hi = CHOIR_VOICES
    n_voices = int(rng.integers(lo, hi + 1))
    vowel = str(rng.choice(["a", "a", "o", "e"]))
    y = np.zeros(int(round(total * sr)), np.float32)
    for _ in range(n_voices):
        v = hummer_voice(rng, "choir")
        v.vowels = (vowel,)
        dt = float(rng.normal(0, 0.025))
        on = np.maximum(notes.onset + dt, 0.0)
        se = np.clip(notes.sound_end + dt, on, total)
        part = Notes(on, notes.dur, notes.pitch + rng.normal(0, 12) / 100, se, notes.gain)
        y += render(part, v, total, rng, sr=sr) * np.float32(rng.uniform(0.5, 1.0))
    return y


def room_and_noise(y: np.ndarray, rng, sr: int = audio.SR) -> np.ndarray:
    """A recording of ``y`` as a phone hears it: a room, background noise at 10-30 dB SNR, a random level."""
    y = audio.peak_normalise(y, 0.7) if np.any(y) else y
    y = _room(y, rng, sr)
    sig_rms = float(np.sqrt(np.mean(y ** 2))) or 1e-3
    snr = rng.uniform(10, 30)
    y = y + _background(len(y), rng, sr) * (sig_rms * 10 ** (-snr / 20))
    return audio.peak_normalise(y, rng.uniform(0.3, 0.95))


def amateur_notes(notes: Notes, fs: float, fe: float, key_shift: float, rng) -> Notes:
    """The notes of ``[fs, fe)`` as an amateur performs them: their own key, uneven timing, per-note pitch
    errors, occasional wrong notes, compressed intervals; times from ``fs``."""
    L = fe - fs
    keep = (notes.sound_end > fs + 0.08) & (notes.onset < fe - 0.1) & ~np.isnan(notes.pitch)
    n = notes.take(keep)
    on = np.maximum(n.onset, fs) - fs
    se = np.minimum(n.sound_end, fe) - fs
    dur = np.minimum(n.onset + n.dur, fe) - fs - on
    # uneven timing: a smooth warp fixed at both ends, |shift| <= ~0.12 s, monotone
    amps = rng.uniform(-1, 1, 3) * np.array([0.08, 0.04, 0.025]) * min(1.0, L / 6)
    def warp(t):
        return t + sum(a * np.sin(np.pi * (m + 1) * t / L) for m, a in enumerate(amps))
    on_w, se_w = warp(on), warp(se)
    end_w = warp(on + dur)
    # hesitant start, early stop
    start_delay = rng.uniform(0.0, 0.25)
    on_w = np.maximum(on_w, start_delay)
    se_w = np.minimum(se_w, L - rng.uniform(0.0, 0.2))
    # pitch: own key, per-note errors, occasional wrong notes, compressed intervals
    pitch = n.pitch + key_shift
    centre = np.median(pitch) if len(pitch) else 60.0
    pitch = centre + (pitch - centre) * rng.uniform(0.85, 1.0)
    pitch = pitch + rng.normal(0, rng.uniform(15, 45), len(pitch)) / 100
    wrong = rng.random(len(pitch)) < rng.uniform(0.02, 0.08)
    pitch[wrong] += rng.choice([-2, -1, 1, 2], wrong.sum())
    return Notes(on_w, np.maximum(end_w - on_w, 0.0), pitch, np.maximum(se_w, on_w),
                 10 ** (rng.normal(0, 2.0, len(pitch)) / 20))
