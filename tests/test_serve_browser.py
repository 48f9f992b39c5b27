"""The page of `chad serve` in a real browser: headless Chromium's fake microphone plays a humming of the
built-in corpus, the page records it (Web Audio, WAV encoded in the page), sends it, and lists the hummed
song first with its matched time; the pitch picture of the match is drawn.

The index is of a tiny untrained encoder (no trained model is available in a test), so the server runs
with ``--rerank dtw-f0``: every song is re-ranked by the classical f0 + DTW matcher over the index's F0
index, which needs no learning. The humming used is the one of the corpus that this matcher, called as a
library, ranks right by the widest margin: the test is about the page, the microphone path and the
service, not about the method's accuracy.

Needs Debian's ``chromium`` and ``chromium-driver`` (.ci/run installs them); skipped without them.
``CHAD_SCREENSHOT=PATH`` saves a screenshot of the results (docs/serve.png was made so).
"""
from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from _searchkit import tiny_fingerprinter
from _servekit import ServerProcess, save_tiny_checkpoint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="needs Chromium and its WebDriver: apt-get install chromium chromium-driver "
                              "(.ci/run installs them)"),
    pytest.mark.usefixtures("one_faiss_thread"),
]
SR = 16000


@pytest.fixture(scope="module")
def hummed(tmp_path_factory):
    """A 3-song corpus, its index (tiny model) with an F0 index, and the humming to play."""
    from chadml.audio import load, resample
    from chadml.corpus import build_corpus, same_music_times
    from chadml.data import Manifest, SongTable
    from chadml.index import SongIndex, song_items
    from chadml.models import checkpoint_id
    from chadml.search import F0Config, F0Index, Searcher
    root = tmp_path_factory.mktemp("browser")
    corpus = build_corpus(root / "corpus", n_songs=3, n_covers=0, hummings_per_song=1, song_seconds=(8, 9),
                          humming_seconds=(5, 7), test_fraction=0, workers=1)
    songs = song_items(corpus.songs)
    fp = tiny_fingerprinter()
    ckpt = save_tiny_checkpoint(fp, root / "m.pt")
    fp.model_id = checkpoint_id(ckpt)
    ix = root / "ix"
    SongIndex.create(ix, fingerprinter=fp, model_path=ckpt).add_songs(songs, fp, progress_bar=False)
    F0Index.build(ix / "f0", songs, F0Config(crepe_model="tiny", hop_length=320), progress_bar=False)
    rows = Manifest.read(corpus.hummings).rows
    searcher = Searcher(ix, fingerprinter=fp, rerank="dtw-f0")
    best = None
    for h in (r for r in rows if r.audio_type == "humming"):
        m = searcher.query(h.path, top=2)
        margin = m[0].score - m[1].score
        if m[0].song_id == h.group_id and (best is None or margin > best[1]):
            best = (h, margin)
    assert best is not None, "the f0 + DTW matcher ranks no humming of the corpus right"
    h = best[0]
    orig = next(r for r in rows if r.audio_type == "original" and r.group_id == h.group_id)
    originals = {s: o for s, (o, _) in SongTable.read(corpus.songs).songs().items()}
    times = same_music_times(originals[h.group_id], originals[h.group_id], orig.start, duration=orig.end - orig.start)
    truth = [orig.start] + [float(t) for t in np.ravel(times) if np.isfinite(t)]
    # Chromium's fake microphone reads a 16-bit WAV file
    import soundfile as sf
    y = load(h.path)
    wav = root / "humming.wav"
    sf.write(wav, resample(y, SR, 48000), 48000, subtype="PCM_16")
    title = dict((s, t) for s, _, t in songs)[h.group_id]
    return {"ix": str(ix), "wav": str(wav), "song": h.group_id, "title": title, "truth": truth,
            "seconds": len(y) / SR}


@pytest.fixture
def browser(hummed):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
              "--window-size=1000,1150", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-audio-capture={hummed['wav']}%noloop",
              "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_hum_into_the_page_and_get_the_song(hummed, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    with ServerProcess(["--index", hummed["ix"], "--rerank", "dtw-f0", "--workers", "2"]) as srv:
        # the page stops recording by itself at ?max= seconds: just before the humming ends (after the end of
        # its file, Chromium's fake microphone plays a tone of its own)
        browser.get(f"{srv.url}/?max={hummed['seconds'] - 0.3:.1f}")
        wait = WebDriverWait(browser, 60)
        record = wait.until(EC.element_to_be_clickable((By.ID, "record")))
        assert browser.find_element(By.ID, "rerank").get_attribute("value") == "dtw-f0"
        record.click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Recording"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#matches tbody tr")
                   or "error" in d.find_element(By.ID, "status").get_attribute("class"))
        status = browser.find_element(By.ID, "status")
        assert "error" not in status.get_attribute("class"), status.text + "\n" + srv.log
        rows = browser.find_elements(By.CSS_SELECTOR, "#matches tbody tr")
        assert len(rows) == 3
        first = rows[0]
        assert first.get_attribute("data-song-id") == hummed["song"], srv.log
        assert first.find_element(By.CSS_SELECTOR, ".title").text == hummed["title"]
        assert first.find_element(By.CSS_SELECTOR, ".rank").text == "1"
        shown = first.find_element(By.CSS_SELECTOR, ".time").text             # m:ss.ss
        m, s = shown.split(":")
        t = 60 * int(m) + float(s)
        assert t == pytest.approx(float(first.get_attribute("data-time-s")), abs=0.006)
        assert min(abs(t - x) for x in hummed["truth"]) <= 1.5, (shown, hummed["truth"])
        summary = browser.find_element(By.ID, "summary").text
        assert "dtw-f0" in summary and "rerank" in summary
        dur = float(summary.split("query ")[1].split(" s")[0])
        assert hummed["seconds"] - 0.6 <= dur <= hummed["seconds"], summary       # the page recorded it all
        # the pitch picture of the first match
        wait.until(EC.text_to_be_present_in_element((By.ID, "alignment-caption"), "Pitch"))
        assert browser.execute_script(
            "const c = document.getElementById('alignment'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
            "for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 120 && d[i + 2] < 60) n++;"
            "return n;") > 200                                                          # the orange query line
        # play the song from its matched time (range requests to /api/songs/ID/audio)
        first.find_element(By.CSS_SELECTOR, ".play").click()
        wait.until(lambda d: d.execute_script("return document.getElementById('player').currentTime") >= t - 0.05)
        assert srv.wait_log(r"POST /api/query 200 .*f0 \d+ ms")
        assert srv.wait_log(r"GET /api/songs/\S+/audio 20[06]")
        if os.environ.get("CHAD_SCREENSHOT"):
            time.sleep(0.5)
            browser.save_screenshot(os.environ["CHAD_SCREENSHOT"])
        # the API's docs page, drawn from /openapi.json in the page
        browser.get(f"{srv.url}/docs")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.op")) >= 6)
        paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "section.op .path")]
        assert "/api/query" in paths and "/api/songs/{song_id}/audio" in paths
    assert "Traceback" not in srv.log, srv.log
