"""Helpers of tests/test_serve.py and test_serve_browser.py: recordings as upload bytes, a checkpoint of a
tiny model, and `chad serve` started as a real process (its URL read from what it prints)."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np


def audio_bytes(y: np.ndarray, sr: int = 16000, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """``y`` as the bytes of an audio file (WAV 16-bit by default; "FLAC", "OGG" ...)."""
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype or ("PCM_16" if fmt == "WAV" else None))
    return buf.getvalue()


def save_tiny_checkpoint(fp, path) -> str:
    """Write the model of ``fp`` (a tiny fingerprinter) as a checkpoint; returns its path."""
    from chadml.models import save_checkpoint
    from chadml.training import TrainConfig
    save_checkpoint(str(path), model=fp.model, feature_config=fp.feature_config, window_config=fp.window_config,
                    train_config=TrainConfig())
    return str(path)


class ServerProcess:
    """``chad serve ARGS --port 0`` in a subprocess; :attr:`url` once it listens, :attr:`log` its stderr."""

    def __init__(self, args: list[str], *, timeout: float = 60.0, env: dict | None = None):
        e = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "chadml.cli.main", "serve", *args, "--port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError("chad serve did not start:\n" + self.log)

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            m = re.search(r"(http://\S+?):(\d+)/", line)
            if m and self.url is None:
                self.url = f"{m.group(1)}:{m.group(2)}"
                self._ready.set()
        self._ready.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_log(self, pattern: str, timeout: float = 10.0) -> bool:
        """Wait until a line of the log matches ``pattern``."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if re.search(pattern, self.log):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> int:
        """Ctrl-C (SIGINT) and wait; returns the exit status."""
        import signal
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
