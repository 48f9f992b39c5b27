import os

import numpy as np
import pytest
import soundfile as sf

from chadml import ChadError, audio


def tone(f, sr, seconds=1.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_float_wav_round_trip_is_exact(tmp_path):
    y = np.random.default_rng(0).uniform(-1, 1, 4000).astype(np.float32)
    p = tmp_path / "x.wav"
    audio.save(p, y, subtype="FLOAT")
    z = audio.load(p)
    assert z.dtype == np.float32 and np.array_equal(y, z)


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_pcm16_round_trip_within_one_lsb(tmp_path, ext):
    y = tone(300, audio.SR)
    p = tmp_path / ("x" + ext)
    audio.save(p, y)
    assert sf.info(str(p)).subtype == "PCM_16"
    z = audio.load(p)
    assert z.shape == y.shape
    assert np.max(np.abs(z - y)) <= 1.0 / 32768 + 1e-7
    assert audio.duration(p) == pytest.approx(1.0)
    # no temporary files left beside the output
    assert sorted(os.listdir(tmp_path)) == ["x" + ext]


def test_resample_keeps_frequency_and_length():
    sr_in, sr_out, f = 44100, 16000, 1000.0
    y = tone(f, sr_in, 2.0)
    z = audio.resample(y, sr_in, sr_out)
    assert z.shape == (32000,) and z.dtype == np.float32
    spec = np.abs(np.fft.rfft(z * np.hanning(len(z))))
    peak_hz = np.argmax(spec) * sr_out / len(z)
    assert abs(peak_hz - f) < 1.0
    # amplitude kept (away from the edges)
    assert np.max(np.abs(z[2000:-2000])) == pytest.approx(0.5, abs=0.01)
    # an identity rate is a no-op
    assert np.array_equal(audio.resample(y, 8000, 8000), y)


def test_load_resamples_and_mixes_stereo(tmp_path):
    sr = 22050
    left, right = tone(440, sr), tone(440, sr, amp=0.1)
    p = tmp_path / "st.wav"
    sf.write(str(p), np.stack([left, right], axis=1), sr, subtype="FLOAT")
    y = audio.load(p)
    assert y.shape == (16000,)
    assert np.max(np.abs(y[1000:-1000])) == pytest.approx(0.3, abs=0.01)   # (0.5 + 0.1) / 2
    y2 = audio.load(p, sr=None, mono=False)
    assert y2.shape == (sr, 2)
    assert np.array_equal(y2[:, 0], left)


def test_to_mono_and_peak_normalise():
    st = np.array([[1.0, -1.0], [0.5, 0.25]], np.float32)
    assert audio.to_mono(st).tolist() == [0.0, 0.375]
    with pytest.raises(ValueError, match="shape"):
        audio.to_mono(np.zeros((2, 2, 2)))
    y = audio.peak_normalise(np.array([0.1, -0.4, 0.2], np.float32))
    assert np.max(np.abs(y)) == pytest.approx(0.99)
    assert np.array_equal(audio.peak_normalise(np.zeros(5, np.float32)), np.zeros(5))
    with pytest.raises(ValueError, match="peak"):
        audio.peak_normalise(y, peak=2.0)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        audio.load(p)


def test_corrupt_file_names_it(tmp_path):
    p = tmp_path / "corrupt.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(ChadError, match="corrupt.wav"):
        audio.load(p)
    q = tmp_path / "zero_bytes.flac"
    q.write_bytes(b"")
    with pytest.raises(ChadError, match="zero_bytes.flac"):
        audio.load(q)


def test_empty_audio_names_it(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(str(p), np.zeros(0, np.float32), 16000)
    with pytest.raises(ChadError, match="empty.wav.*no samples"):
        audio.load(p)


def test_silent_file_loads(tmp_path):
    p = tmp_path / "silent.wav"
    audio.save(p, np.zeros(1600, np.float32))
    y = audio.load(p)
    assert y.shape == (1600,) and not y.any()


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        audio.save(tmp_path / "a.wav", np.array([0.0, np.nan], np.float32))
    with pytest.raises(TypeError, match="dtype"):
        audio.save(tmp_path / "a.wav", np.array([0, 1], np.int16))
    with pytest.raises(ValueError, match=r"\.wav, \.flac"):
        audio.save(tmp_path / "a.mp4", np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="sr"):
        audio.save(tmp_path / "a.wav", np.zeros(4, np.float32), sr=0)
    assert not os.listdir(tmp_path)


def test_load_a_fragment(tmp_path):
    y = np.random.default_rng(1).uniform(-1, 1, 48000).astype(np.float32)
    p = tmp_path / "long.wav"
    audio.save(p, y, sr=48000, subtype="FLOAT")
    frag = audio.load(p, sr=None, start=0.25, end=0.5)
    assert np.array_equal(frag, y[12000:24000])
    assert audio.load(p, sr=None, start=0.9, end=5.0).shape == (4800,)     # cut at the end of the file
    assert np.allclose(audio.load(p, start=0.25, end=0.5), audio.resample(y[12000:24000], 48000, 16000))
    with pytest.raises(ValueError, match="past the end"):
        audio.load(p, start=2.0)
    with pytest.raises(ValueError, match="end"):
        audio.load(p, start=0.5, end=0.5)
    with pytest.raises(ValueError, match="start"):
        audio.load(p, start=-1)
