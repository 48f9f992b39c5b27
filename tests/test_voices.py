"""The varied voices of release training (sung syllables, whistling, phone channel), the held-out tune
rule, and the FluidSynth voice source of the independent evaluation."""
from __future__ import annotations

import numpy as np
import pytest

from chadml import corpus
from chadml.data import Manifest, SongTable
from chadml.corpus import fluid

librosa = pytest.importorskip("librosa")

SR = 16000
SCALE = np.array([0, 2, 4, 5, 7, 5, 4, 2], float)


def _notes(base=60.0):
    return corpus.Notes(np.arange(8) * 0.5, np.full(8, 0.45), base + SCALE)


def _median_midi(y, fmax=2600.0):
    f0 = librosa.yin(y.astype(np.float64), fmin=60, fmax=fmax, sr=SR)
    return float(librosa.hz_to_midi(np.median(f0)))


def _sampled_ok() -> bool:
    try:
        fluid.training_soundfonts()
        return True
    except fluid.FluidSynthUnavailable:
        return False


@pytest.mark.parametrize("style", [s for s in corpus.HUM_STYLES if s not in corpus.SAMPLED_STYLES])
def test_each_style_hums_the_notes_in_its_register(style):
    y = corpus.hum(_notes(), 0.0, 4.0, 0.0, np.random.default_rng(3), style=style)
    assert y.dtype == np.float32 and len(y) == 4 * SR and np.isfinite(y).all()
    expect = np.median(60 + SCALE) + (corpus.WHISTLE_SHIFT if style == "whistle" else 0.0)
    assert abs(_median_midi(y) - expect) < 1.0


@pytest.mark.skipif(not _sampled_ok(), reason="fluidsynth / training soundfonts not installed (.ci/run installs them)")
@pytest.mark.parametrize("style", corpus.SAMPLED_STYLES)
def test_sampled_styles_play_the_notes_with_a_training_soundfont(style, monkeypatch):
    """A sampled query is the amateur's notes played by a program of the style's table, in the program's
    octave, from a training soundfont (never an evaluation one)."""
    calls = []
    real = fluid.render_notes

    def spy(pitch, onset, dur, total, **kw):
        calls.append(kw)
        return real(pitch, onset, dur, total, **kw)

    monkeypatch.setattr(fluid, "render_notes", spy)
    table = fluid.TRAINING_VOICES if style == "sampled" else fluid.TRAINING_INSTRUMENTS
    seen = set()
    for seed in range(3):
        y = corpus.hum(_notes(), 0.0, 4.0, 0.0, np.random.default_rng(seed), style=style)
        assert y.dtype == np.float32 and len(y) == 4 * SR and np.isfinite(y).all() and np.abs(y).max() > 0.05
        kw = calls[-1]
        assert kw["soundfont"] in fluid.training_soundfonts() and kw["program"] in table
        assert "FluidR3" not in kw["soundfont"] and "MuseScore" not in kw["soundfont"]
        expect = np.median(60 + SCALE) + table[kw["program"]]
        assert abs(_median_midi(y, fmax=4000.0) - expect) < 3.0     # the register: no octave off
        seen.add(kw["program"])
    assert len(seen) > 1                                   # the program is drawn per query


def test_training_soundfonts_refuse_evaluation_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("CHAD_TRAIN_SOUNDFONTS", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
    with pytest.raises(fluid.FluidSynthUnavailable, match="evaluation voice source"):
        fluid.training_soundfonts()
    link = tmp_path / "mine.sf2"                           # also through a link to it
    link.symlink_to("/usr/share/sounds/sf3/MuseScore_General.sf3")
    monkeypatch.setenv("CHAD_TRAIN_SOUNDFONTS", str(link))
    with pytest.raises(fluid.FluidSynthUnavailable, match="evaluation voice source"):
        fluid.training_soundfonts()
    monkeypatch.setenv("CHAD_TRAIN_SOUNDFONTS", str(tmp_path / "none.sf2"))
    with pytest.raises(fluid.FluidSynthUnavailable, match="timgm6mb-soundfont"):
        fluid.training_soundfonts()
    with pytest.raises(fluid.FluidSynthUnavailable, match="timgm6mb-soundfont"):
        corpus.build_corpus(tmp_path / "c", n_songs=1, hum_styles=("mm", "sampled"))


def test_mm_is_the_demo_humming_unchanged():
    a = corpus.hum(_notes(), 0.0, 4.0, 1.5, np.random.default_rng(7))
    b = corpus.hum(_notes(), 0.0, 4.0, 1.5, np.random.default_rng(7), style="mm", channel=False)
    np.testing.assert_array_equal(a, b)


def test_choir_is_several_voices_in_unison_with_a_weak_fundamental(monkeypatch):
    """A choir query is CHOIR_VOICES voices of one vowel, rendered from the same notes a few cents and ms
    apart; its fundamental is well under the vowel's harmonics near the first formant."""
    calls = []
    real = corpus.voice.render

    def spy(notes, singer, total, rng, **kw):
        calls.append((notes, singer))
        return real(notes, singer, total, rng, **kw)

    monkeypatch.setattr(corpus.voice, "render", spy)
    rng = np.random.default_rng(5)
    notes = _notes(48.0)          # 131 Hz: the first formant of "a" lies near the 5th-6th harmonic
    y = corpus.choir(notes, 4.0, rng)
    lo, hi = corpus.CHOIR_VOICES
    assert lo <= len(calls) <= hi and len({s.vowels for _, s in calls}) == 1
    for part, _ in calls:
        assert np.all(np.abs(part.onset - notes.onset) < 0.15)
        d = part.pitch - notes.pitch
        assert np.allclose(d, d[0]) and abs(d[0]) < 0.6
    seg = y[SR:3 * SR].astype(np.float64)
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    freq = np.fft.rfftfreq(len(seg), 1 / SR)
    f0s = 440 * 2 ** ((notes.pitch[2:6] - 69) / 12)
    fund = max(spec[np.abs(freq - f) < 4].max() for f in f0s)
    assert spec[(freq > 400) & (freq < 1000)].max() > 3 * fund


def test_bad_style_is_named():
    with pytest.raises(ValueError, match="style must be one of"):
        corpus.hummer_voice(np.random.default_rng(0), "yodel")
    with pytest.raises(ValueError, match="sampled voice"):
        corpus.hummer_voice(np.random.default_rng(0), "sampled")


def test_phone_channel_removes_low_rumble():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    y = (np.sin(2 * np.pi * 40 * t) + np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    z = corpus.phone_channel(y, rng)
    spec = np.abs(np.fft.rfft(z))
    assert spec[40] < 0.3 * spec[1000]
    assert np.isfinite(z).all() and z.dtype == np.float32


def test_held_out_is_a_fixed_tenth():
    ids = [f"oneills1850/0001-0050/{i}" for i in range(3000)]
    share = np.mean([corpus.held_out(i) for i in ids])
    assert 0.08 < share < 0.12
    assert [corpus.held_out(i) for i in ids[:50]] == [corpus.held_out(i) for i in ids[:50]]


def test_build_corpus_with_styles_and_explicit_tunes(tmp_path):
    tunes = corpus.load_tunes(limit=2)
    p = corpus.build_corpus(tmp_path / "c", tunes=tunes[::-1], n_songs=2, n_covers=0, hummings_per_song=2,
                            hummers=2, song_seconds=(10, 12), humming_seconds=(3, 5), test_fraction=0.0,
                            hum_styles=("whistle", "la"), channel_p=1.0, workers=1)
    rows = [r for r in Manifest.read(p.hummings).rows if r.audio_type == "humming"]
    assert rows and {r.extra.get("style") for r in rows} <= {"whistle", "la"}
    songs = SongTable.read(p.songs)
    assert {o.extra["tune_id"] for o, _ in songs.songs().values()} == {t.id for t in tunes}
    with pytest.raises(ValueError, match="hum_styles"):
        corpus.build_corpus(tmp_path / "d", n_songs=1, hum_styles=("yodel",))
    with pytest.raises(ValueError, match="channel_p"):
        corpus.build_corpus(tmp_path / "d", n_songs=1, channel_p=2.0)


def test_midi_file_is_a_standard_midi_file():
    smf = fluid.midi_file([60.0, 62.5, np.nan], [0.0, 0.5, 1.0], [0.5, 0.5, 0.5], program=78)
    assert smf[:4] == b"MThd" and smf[14:18] == b"MTrk"
    assert bytes([0xC0, 78]) in smf                      # the program change
    assert bytes([0x90, 62]) in smf and bytes([0x90, 63]) not in smf   # 62.5 -> key 62 bent up
    with pytest.raises(ValueError, match="program"):
        fluid.midi_file([60.0], [0.0], [1.0], program=200)
    with pytest.raises(ValueError, match="1-D"):
        fluid.midi_file([60.0, 61.0], [0.0], [1.0])


@pytest.mark.skipif(not fluid.available(), reason="fluidsynth / a GM soundfont not installed (.ci/run installs them)")
@pytest.mark.parametrize("program,base", [(52, 60.0), (78, 84.0)])
def test_fluidsynth_renders_the_pitches(program, base):
    n = _notes(base)
    y = fluid.render_notes(n.pitch, n.onset, n.dur, 4.0, program=program)
    assert len(y) == 4 * SR and np.abs(y).max() > 0.01
    assert abs(_median_midi(y) - np.median(base + SCALE)) < 1.0


@pytest.mark.skipif(not (fluid.available() and fluid.shutil.which("timidity")),
                    reason="timidity / a GM soundfont not installed (.ci/run installs them)")
def test_timidity_renders_the_same_notes_with_another_engine():
    n = _notes(60.0)
    y = fluid.render_notes(n.pitch, n.onset, n.dur, 4.0, program=53, engine="timidity")
    z = fluid.render_notes(n.pitch, n.onset, n.dur, 4.0, program=53)
    assert len(y) == 4 * SR and np.abs(y).max() > 0.005 and np.isfinite(y).all()
    assert abs(_median_midi(y) - np.median(60 + SCALE)) < 1.0
    assert not np.allclose(y, z, atol=1e-3)                # another engine, another signal


def test_bad_engine_is_named():
    with pytest.raises(ValueError, match="engine must be one of"):
        fluid.render_notes([60.0], [0.0], [0.5], 1.0, engine="sox")


def test_fluidsynth_missing_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(fluid.shutil, "which", lambda name: None)
    with pytest.raises(fluid.FluidSynthUnavailable, match="apt-get install fluidsynth"):
        fluid.render_notes([60.0], [0.0], [0.5], 1.0)
