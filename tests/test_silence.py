"""chadsp silence functions: rms_db, silence_mask, split_by_silence, merge_fragments.

Checked against the numpy references (tests/reference.py) and against librosa (rms + amplitude_to_db,
effects.split). Re-run under AddressSanitizer/UBSan in CI: this module must not import torch.
"""
from __future__ import annotations

import librosa
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import chadsp
import reference as ref  # tests/reference.py (pytest puts tests/ on sys.path)

pytestmark = [pytest.mark.asan, pytest.mark.usefixtures("chadsp_backend")]   # C and numba

SR = 16000


def librosa_db(y, frame_length=2048, hop_length=512, center=True, top_db=None):
    r = librosa.feature.rms(y=np.asarray(y, dtype=np.float32), frame_length=frame_length,
                            hop_length=hop_length, center=center)[0]
    return librosa.amplitude_to_db(r, ref=np.max, top_db=top_db)


def bursts(spec, seed: int) -> np.ndarray:
    """A signal from (kind, length, log10 amplitude) segments: tone, noise, constant or digital silence."""
    rng = np.random.default_rng(seed)
    parts = []
    for kind, n, la in spec:
        a = 10.0 ** la
        if kind == "zero":
            parts.append(np.zeros(n))
        elif kind == "tone":
            parts.append(a * np.sin(2 * np.pi * rng.uniform(50, 4000) * np.arange(n) / SR + rng.uniform(0, 6)))
        elif kind == "noise":
            parts.append(a * rng.standard_normal(n))
        else:
            parts.append(np.full(n, a))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


segments = st.lists(st.tuples(st.sampled_from(["zero", "tone", "noise", "const"]),
                              st.integers(0, 1500), st.floats(-7, 1)), min_size=1, max_size=6)
frame_hop = st.tuples(st.integers(1, 700), st.integers(1, 400))


def not_at_threshold(y, top_db, fl, hop):
    """Frames whose level is within 1e-3 dB of -top_db may fall either way (float32 vs double rounding)."""
    db = ref.rms_db(y, fl, hop, True)
    return not np.any(np.abs(db + top_db) < 1e-3)


# ------------------------------------------------------------------ rms_db

@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("fl,hop", [(2048, 512), (2047, 512), (1024, 1024), (400, 160), (300, 700), (1, 1)])
def test_rms_db_matches_librosa(fl, hop, center):
    y = bursts([("noise", 5000, -1), ("zero", 3000, 0), ("tone", 4000, 0), ("noise", 3000, -5)], 1)
    ours = chadsp.rms_db(y, frame_length=fl, hop_length=hop, center=center)
    theirs = librosa_db(y, fl, hop, center)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=0)
    assert ours.max() == 0.0
    assert ours.min() < -80  # digital silence sits at the floor, about -97 dB here: not clipped at -80


@given(segments, st.integers(0, 2**32 - 1), frame_hop, st.booleans())
def test_rms_db_property(spec, seed, fh, center):
    y = bursts(spec, seed)
    fl, hop = fh
    ours = chadsp.rms_db(y, frame_length=fl, hop_length=hop, center=center)
    assert ours.shape == (ref.n_frames(len(y), fl, hop, center),)
    np.testing.assert_allclose(ours, ref.rms_db(y, fl, hop, center), atol=1e-4, rtol=0)
    if ours.size and fl <= 2048:
        np.testing.assert_allclose(ours, librosa_db(y, fl, hop, center), atol=1e-3, rtol=0)


def test_rms_db_vs_librosa_default_clipping():
    """librosa's default top_db=80 only clips; rms_db does not (documented)."""
    y = bursts([("tone", 8000, 0), ("zero", 8000, 0), ("noise", 8000, -3)], 2)
    ours = chadsp.rms_db(y)
    assert ours.min() < -80
    np.testing.assert_allclose(np.maximum(ours, ours.max() - 80), librosa_db(y, top_db=80.0), atol=1e-3)


@pytest.mark.parametrize("n", [0, 1, 2, 511, 512, 513, 1023, 1024, 2047, 2048, 2049, 5000])
@pytest.mark.parametrize("fl,hop", [(2048, 512), (2047, 512), (1024, 256), (5, 7)])
@pytest.mark.parametrize("center", [True, False])
def test_rms_db_frame_count(n, fl, hop, center):
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    ours = chadsp.rms_db(y, frame_length=fl, hop_length=hop, center=center)
    expect = ref.n_frames(n, fl, hop, center)
    assert ours.shape == (expect,)
    if expect:
        assert librosa.feature.rms(y=y, frame_length=fl, hop_length=hop, center=center).shape[-1] == expect
    else:  # librosa raises where the (padded) signal is shorter than one frame; we return no frames
        with pytest.raises(librosa.ParameterError):
            librosa.feature.rms(y=y, frame_length=fl, hop_length=hop, center=center)


def test_rms_db_constant_and_silent():
    assert np.array_equal(chadsp.rms_db(np.zeros(5000)), np.zeros(ref.n_frames(5000, 2048, 512)))
    db = chadsp.rms_db(np.full(8192, 0.5, np.float32), frame_length=1024, hop_length=1024, center=False)
    assert np.array_equal(db, np.zeros(8))
    db = chadsp.rms_db(np.r_[np.ones(1024), 0.1 * np.ones(1024), np.zeros(1024)], frame_length=1024,
                       hop_length=1024, center=False)
    np.testing.assert_allclose(db, [0, -20, -100], atol=1e-4)


def test_rms_db_input_forms_and_no_mutation():
    y64 = np.random.default_rng(3).standard_normal(20000) * np.repeat([1, 1e-3, 1], [8000, 4000, 8000])
    keep = y64.copy()
    a = chadsp.rms_db(y64)
    assert np.array_equal(y64, keep)
    assert np.array_equal(a, chadsp.rms_db(y64.astype(np.float32)))
    assert np.array_equal(a, chadsp.rms_db(list(y64)))
    wide = np.repeat(y64, 2)
    assert np.array_equal(chadsp.rms_db(wide[::2]), a)            # non-contiguous
    ints = (y64 * 1000).astype(np.int16)
    np.testing.assert_allclose(chadsp.rms_db(ints), ref.rms_db(ints.astype(np.float32)), atol=1e-4)


# ------------------------------------------------------------------ silence_mask

def test_silence_mask_values():
    db = np.array([0.0, -30.0, -59.999, -60.0, -75.0], np.float32)
    assert chadsp.silence_mask(db, 60).tolist() == [False, False, False, True, True]
    # relative to the loudest frame of whatever curve is given
    assert chadsp.silence_mask(db + 7, 60).tolist() == [False, False, False, True, True]
    assert chadsp.silence_mask(np.zeros(0), 60).shape == (0,)
    assert chadsp.silence_mask([-5.0], 1e-3).tolist() == [False]


@given(segments, st.integers(0, 2**32 - 1), frame_hop, st.floats(1, 90))
def test_silence_mask_runs_are_split(spec, seed, fh, top_db):
    """The runs of non-silent frames of rms_db/silence_mask are exactly split_by_silence's intervals."""
    y = bursts(spec, seed)
    fl, hop = fh
    assume(len(y) > 0 and not_at_threshold(y, top_db, fl, hop))
    mask = chadsp.silence_mask(chadsp.rms_db(y, frame_length=fl, hop_length=hop), top_db)
    assert np.array_equal(mask, ref.silence_mask(ref.rms_db(y, fl, hop), top_db))
    edges = np.flatnonzero(np.diff(np.r_[0, (~mask).astype(int), 0]))
    expect = np.minimum(edges.reshape(-1, 2) * hop, len(y))
    assert np.array_equal(chadsp.split_by_silence(y, top_db, frame_length=fl, hop_length=hop), expect)


# ------------------------------------------------------------------ split_by_silence

def check_split(y, top_db, fl=2048, hop=512):
    ours = chadsp.split_by_silence(y, top_db, frame_length=fl, hop_length=hop)
    theirs = librosa.effects.split(np.asarray(y, np.float32), top_db=top_db, frame_length=fl, hop_length=hop)
    assert ours.dtype == np.int64 and ours.ndim == 2 and ours.shape[1] == 2
    assert np.array_equal(ours, theirs), (ours.tolist(), theirs.tolist())
    assert np.array_equal(ours, ref.split_by_silence(y, top_db, fl, hop))
    return ours


@pytest.mark.parametrize("top_db", [20, 52, 60, 68, 80])
def test_split_tone_bursts(top_db):
    """Tone bursts at several levels between digital silence and quiet noise."""
    y = bursts([("zero", 9000, 0), ("tone", 16000, 0), ("noise", 8000, -4), ("tone", 12000, -1.5),
                ("zero", 20000, 0), ("tone", 3000, -2.5), ("noise", 6000, -6), ("tone", 30000, -0.5)], 4)
    iv = check_split(y, top_db)
    assert len(iv) >= 2
    # every burst louder than -top_db is inside an interval
    assert ((iv[:, 0] <= 9000) & (iv[:, 1] >= 25000)).any()


def test_split_paper_levels_on_long_signal():
    rng = np.random.default_rng(5)
    spec = [(["tone", "noise", "zero"][k % 3], int(n), float(a))
            for k, (n, a) in enumerate(zip(rng.integers(2000, 40000, 30), rng.uniform(-6, 0, 30)))]
    y = bursts(spec, 6)
    for top_db in (52, 56, 60, 64, 68):
        check_split(y, top_db)


def test_split_intervals_touch_both_ends():
    y = bursts([("tone", 6000, 0), ("zero", 10000, 0), ("tone", 7001, 0)], 7)
    iv = check_split(y, 60)
    assert iv[0, 0] == 0 and iv[-1, 1] == len(y) and len(iv) == 2


def test_split_all_silent_all_loud_and_tiny():
    for n in (1, 2, 100, 5000):
        assert check_split(np.zeros(n), 60).tolist() == [[0, n]]        # levels are relative
        assert check_split(np.ones(n), 60).tolist() == [[0, n]]
    assert check_split(np.random.default_rng(0).standard_normal(40000), 60).tolist() == [[0, 40000]]
    assert check_split([0.3], 10).tolist() == [[0, 1]]
    # huge finite values (their sum of squares overflows float32: the finiteness check's slow path)
    huge = np.r_[np.full(3000, 3e38), np.zeros(9000), np.full(3000, -3e38)].astype(np.float32)
    assert chadsp.split_by_silence(huge, 60).tolist() == ref.split_by_silence(huge, 60).tolist() == [[0, 4096],
                                                                                                      [11264, 15000]]
    np.testing.assert_allclose(chadsp.rms_db(huge), ref.rms_db(huge), atol=1e-4)
    assert check_split([0.3], 10, fl=2047).tolist() == [[0, 1]]
    # empty: no interval (librosa returns [[0, 0]] for an even frame and raises for an odd one)
    assert chadsp.split_by_silence(np.zeros(0, np.float32), 60).shape == (0, 2)
    assert chadsp.split_by_silence([], 60, frame_length=2047).shape == (0, 2)


def test_split_librosa_quirks():
    # hop > frame_length // 2: a frame that starts at len(y) gives an empty interval, as in librosa
    assert check_split([0, 0, 1, 1], 10, fl=4, hop=4).tolist() == [[4, 4]]
    # hop > frame_length: samples between frames are never looked at
    check_split(bursts([("noise", 3000, 0), ("zero", 3000, 0)], 8), 30, fl=100, hop=1000)


@given(segments, st.integers(0, 2**32 - 1), frame_hop, st.floats(1, 90))
def test_split_matches_librosa_property(spec, seed, fh, top_db):
    y = bursts(spec, seed)
    fl, hop = fh
    assume(len(y) > 0 and not_at_threshold(y, top_db, fl, hop))
    iv = check_split(y, top_db, fl, hop)
    assert np.all(iv[:, 0] <= iv[:, 1]) and np.all(iv[1:, 0] > iv[:-1, 1]) and iv.max(initial=0) <= len(y)


@given(st.lists(st.floats(-1, 1, width=32, allow_subnormal=False), min_size=1, max_size=3000),
       st.sampled_from([(2048, 512), (512, 128), (64, 16), (7, 3), (33, 50)]), st.floats(1, 90))
def test_split_raw_floats_property(vals, fh, top_db):
    y = np.array(vals, np.float32)
    fl, hop = fh
    assume(not_at_threshold(y, top_db, fl, hop))
    check_split(y, top_db, fl, hop)


def test_split_input_forms():
    y = bursts([("zero", 5000, 0), ("tone", 9000, 0), ("zero", 7000, 0), ("noise", 4000, -1)], 9)
    a = chadsp.split_by_silence(y, 60)
    assert np.array_equal(a, chadsp.split_by_silence(y.astype(np.float64), 60.0))
    assert np.array_equal(a, chadsp.split_by_silence(np.repeat(y, 3)[::3], np.float32(60)))
    assert np.array_equal(a, chadsp.split_by_silence(y, 60, frame_length=np.int64(2048), hop_length=np.int32(512)))
    with pytest.raises(TypeError):
        chadsp.split_by_silence(y, 60, 2048, 512)  # frame/hop are keyword-only


# ------------------------------------------------------------------ merge_fragments

def test_merge_fragments_paper_scale():
    s = SR
    iv = np.array([[0, 3 * s], [int(3.4 * s), 6 * s], [7 * s, 9 * s],            # pauses 0.4 s, 1 s
                   [12 * s, 15 * s], [int(15.5 * s), 30 * s],                     # pause 0.5 s, joined 18 s
                   [40 * s, 41 * s]])
    out = chadsp.merge_fragments(iv, int(0.5 * s), 8 * s, 20 * s)
    # pause 0.5 s joins [0, 6 s); 1 s does not: [0, 6 s) is 6 s < 8 s: dropped; [7, 9 s) too short;
    # [12, 30 s) is 18 s: kept; [40, 41 s) too short
    assert out.tolist() == [[12 * s, 30 * s]]
    out = chadsp.merge_fragments(iv, 1 * s, 8 * s, 20 * s)
    assert out.tolist() == [[0, 9 * s], [12 * s, 30 * s]]
    assert np.array_equal(out, ref.merge_fragments(iv, 1 * s, 8 * s, 20 * s))


def test_merge_fragments_edges():
    assert chadsp.merge_fragments([], 5, 0, 10).shape == (0, 2)
    assert chadsp.merge_fragments(np.zeros((0, 2), np.int32), 5, 0, 10).shape == (0, 2)
    assert chadsp.merge_fragments([[3, 7]], 0, 4, 4).tolist() == [[3, 7]]
    assert chadsp.merge_fragments([[3, 7]], 0, 5, 9).tolist() == []
    # touching intervals join with max_pause = 0; a pause of 1 does not
    assert chadsp.merge_fragments([[0, 2], [2, 4], [5, 6]], 0, 0, 100).tolist() == [[0, 4], [5, 6]]
    # max_len stops a join; the next interval then starts a fragment of its own
    assert chadsp.merge_fragments([[0, 6], [7, 12], [13, 15]], 5, 0, 10).tolist() == [[0, 6], [7, 15]]
    # an interval longer than max_len is dropped, not cut
    assert chadsp.merge_fragments([[0, 50], [51, 52]], 5, 0, 10).tolist() == [[51, 52]]
    # empty intervals are legal input
    assert chadsp.merge_fragments([[4, 4], [4, 4], [9, 9]], 0, 0, 10).tolist() == [[4, 4], [9, 9]]
    iv = np.array([[0, 10], [20, 30]], np.uint16)
    assert chadsp.merge_fragments(iv, 10, 0, 100).tolist() == [[0, 30]]
    keep = iv.copy()
    chadsp.merge_fragments(iv, 10, 0, 100)
    assert np.array_equal(iv, keep)


@st.composite
def interval_lists(draw):
    gaps = draw(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 60)), max_size=40))
    out, t = [], draw(st.integers(0, 20))
    for gap, length in gaps:
        t += gap
        out.append([t, t + length])
        t += length
    return np.array(out, np.int64).reshape(-1, 2)


@given(interval_lists(), st.integers(0, 60), st.integers(0, 100), st.integers(0, 250))
def test_merge_fragments_property(iv, max_pause, min_len, extra):
    max_len = min_len + extra
    out = chadsp.merge_fragments(iv, max_pause, min_len, max_len)
    assert np.array_equal(out, ref.merge_fragments(iv, max_pause, min_len, max_len))
    lengths = out[:, 1] - out[:, 0]
    assert np.all((lengths >= min_len) & (lengths <= max_len))
    # each fragment starts at an input start and ends at an input end
    assert set(out[:, 0]) <= set(iv[:, 0]) and set(out[:, 1]) <= set(iv[:, 1])
    assert chadsp.merge_fragments(out, 0, min_len, max_len).shape[0] <= out.shape[0]


# ------------------------------------------------------------------ bad input

GOOD = np.random.default_rng(0).standard_normal(3000).astype(np.float32)


def _bad_signals():
    nan = GOOD.copy()
    nan[17] = np.nan
    inf = GOOD.copy()
    inf[-1] = -np.inf
    return [
        (nan, ValueError, "finite"), (inf, ValueError, "finite"),
        (GOOD.reshape(30, 100), ValueError, "1-D"), (np.float32(1.0), ValueError, "1-D"),
        (GOOD.astype(np.complex64), TypeError, "complex"), (GOOD > 0, TypeError, "bool"),
        (np.array([1.0, "a"], dtype=object), TypeError, "object"), ("abc", TypeError, "y"),
        (None, TypeError, "y"),
    ]


@pytest.mark.parametrize("y,exc,msg", _bad_signals())
@pytest.mark.parametrize("fn", [lambda y: chadsp.rms_db(y), lambda y: chadsp.split_by_silence(y, 60)])
def test_bad_signal(fn, y, exc, msg):
    with pytest.raises(exc, match=msg):
        fn(y)


@pytest.mark.parametrize("kw,exc", [
    ({"frame_length": 0}, ValueError), ({"frame_length": -2048}, ValueError), ({"hop_length": 0}, ValueError),
    ({"hop_length": -1}, ValueError), ({"frame_length": 2048.0}, TypeError), ({"hop_length": True}, TypeError),
    ({"hop_length": None}, TypeError), ({"frame_length": "2048"}, TypeError),
    ({"frame_length": 2**62}, ValueError), ({"hop_length": 2**63 - 1}, ValueError),
])
def test_bad_frame_args(kw, exc):
    name = next(iter(kw))
    with pytest.raises(exc, match=name):
        chadsp.rms_db(GOOD, **kw)
    with pytest.raises(exc, match=name):
        chadsp.split_by_silence(GOOD, 60, **kw)


def test_huge_frames_are_fine():
    """Frames far longer than the signal each hold all of it (the block and direct paths alike)."""
    for fl, hop in [(2**40, 2**40), (2**40, 2**39), (2**40, 512), (10**5 + 1, 3)]:
        db = chadsp.rms_db(GOOD, frame_length=fl, hop_length=hop)
        assert db.shape == (ref.n_frames(GOOD.size, fl, hop),) and np.all(db == 0)
        assert chadsp.split_by_silence(GOOD, 60, frame_length=fl, hop_length=hop).tolist() == [[0, 3000]]


def test_bad_center():
    with pytest.raises(TypeError, match="center"):
        chadsp.rms_db(GOOD, center=1)


@pytest.mark.parametrize("top_db,exc", [(0, ValueError), (-60, ValueError), (0.0, ValueError),
                                        (np.nan, ValueError), (np.inf, ValueError), ("60", TypeError),
                                        (None, TypeError), (True, TypeError), (60 + 0j, TypeError)])
def test_bad_top_db(top_db, exc):
    with pytest.raises(exc, match="top_db"):
        chadsp.split_by_silence(GOOD, top_db)
    with pytest.raises(exc, match="top_db"):
        chadsp.silence_mask(np.zeros(4), top_db)


@pytest.mark.parametrize("db,exc,msg", [
    (np.array([0.0, np.nan]), ValueError, "finite"), (np.array([0.0, -np.inf]), ValueError, "finite"),
    (np.zeros((2, 2)), ValueError, "1-D"), (np.zeros(3, bool), TypeError, "bool"),
    (np.zeros(3, complex), TypeError, "complex"), (np.array([None]), TypeError, "object"),
])
def test_bad_silence_mask_input(db, exc, msg):
    with pytest.raises(exc, match=msg):
        chadsp.silence_mask(db, 60)


@pytest.mark.parametrize("iv,exc,msg", [
    (np.array([[0.0, 1.0]]), TypeError, "integer"), (np.array([[True, True]]), TypeError, "integer"),
    (np.array([[0, 1]], complex), TypeError, "integer"), (np.array([[0, 1]], object), TypeError, "integer"),
    ("0 1", TypeError, "intervals"), (None, TypeError, "intervals"),
    (np.array([0, 1, 2]), ValueError, "shape"), (np.zeros((2, 3), int), ValueError, "shape"),
    (np.zeros((1, 2, 2), int), ValueError, "shape"),
    (np.array([[5, 3]]), ValueError, "start <= end"), (np.array([[-1, 3]]), ValueError, "non-negative"),
    (np.array([[0, 10], [5, 20]]), ValueError, "non-overlapping"),
    (np.array([[10, 20], [0, 5]]), ValueError, "sorted"),
    (np.array([[0, 2**64 - 1]], np.uint64), ValueError, "int64"),
])
def test_bad_intervals(iv, exc, msg):
    with pytest.raises(exc, match=msg):
        chadsp.merge_fragments(iv, 10, 0, 100)


@pytest.mark.parametrize("args,exc,name", [
    ((-1, 0, 10), ValueError, "max_pause"), ((0, -1, 10), ValueError, "min_len"),
    ((0, 0, -1), ValueError, "max_len"), ((0, 20, 10), ValueError, "max_len"),
    ((0.5, 0, 10), TypeError, "max_pause"), ((0, 8.0, 10), TypeError, "min_len"),
    ((0, 0, None), TypeError, "max_len"), ((True, 0, 10), TypeError, "max_pause"),
])
def test_bad_merge_args(args, exc, name):
    with pytest.raises(exc, match=name):
        chadsp.merge_fragments([[0, 5], [6, 9]], *args)
