"""Algorithm 1 for one song (:func:`mine_song`): fragment the original, match the fragments in every
cover, check the matches; the result is a JSON-able dict (the per-song file of a mining workdir)."""
from __future__ import annotations

import io
import logging
import math
import time
from typing import Any, Sequence

import chadsp
import numpy as np

from ..audio import load
from ..separation import get_separator
from .config import FORMAT_VERSION, SR, MiningConfig
from .embedding import embed
from .fragments import fragmentation
from .matching import consensus_shift, cross_check, key_shift, match_fragment, pitch_frames
from .precision import nearest, shifted_starts, true_starts

log = logging.getLogger(__name__)

__all__ = ["mine_song", "song_record", "rounded"]


def song_record(row) -> dict:
    """The fields of a SongTable row that mining needs, as a plain dict (picklable, JSON-able)."""
    al = getattr(row, "alignment", None)
    return {"version_id": str(row.version_id), "path": str(row.path), "split": str(getattr(row, "split", "")),
            "duration": float(getattr(row, "duration", float("nan"))),
            "alignment": [[None if o is None else float(o), float(v)] for o, v in (al or [])]}


def rounded(x: float, nd: int) -> float:
    """``x`` rounded to ``nd`` decimals, as a plain float (results stable across processes and machines)."""
    return float(round(float(x), nd))


def mine_song(song_id: str, original, covers: Sequence, fingerprinter, *, config: MiningConfig | None = None,
              separator=None, plot: bool = False, sr: int = SR) -> dict:
    """Algorithm 1 for one song: its groups of aligned fragments, as a JSON-able dict.

    ``original`` and ``covers`` are SongTable rows (or dicts with ``version_id``, ``path``, ``split``).
    Bad input does not raise: a song that cannot be mined (unreadable or silent original, no covers,
    no fragment of d_min..d_max s) comes back with ``status="skipped"`` and a ``reason``; an unreadable
    cover or one shorter than a fragment is listed in ``skipped`` and the rest is mined.

    Returns
    -------
    dict with ``song_id``, ``status`` ("ok"/"skipped"), ``reason``, ``original``, ``pause``, ``db_level``,
    ``grid``, ``groups`` (each: ``start``, ``end``, ``matches``: list of dicts ``version_id``, ``path``,
    ``start``, ``end``, ``score``, ``relevant``), ``skipped`` (dicts ``version_id``, ``reason``) and
    ``timing`` (seconds: ``load``, ``separation``, ``encoder``, ``total``). Times are rounded to 1 ms and
    scores to 1e-4 so that results are stable across processes and machines.

    Example
    -------
    >>> res = mine_song("s1", orig_row, cover_rows, fingerprinter)     # doctest: +SKIP
    >>> res["status"], len(res["groups"]), res["groups"][0]["matches"][0]["relevant"]  # doctest: +SKIP
    ('ok', 4, True)
    """
    config = config or MiningConfig()
    separator = get_separator(separator)
    t_all = time.perf_counter()
    timing = {"load": 0.0, "separation": 0.0, "encoder": 0.0}
    orig = original if isinstance(original, dict) else song_record(original)
    covs = [c if isinstance(c, dict) else song_record(c) for c in covers]
    res: dict[str, Any] = {"format_version": FORMAT_VERSION, "song_id": str(song_id), "status": "ok",
                           "reason": None, "original": orig, "pause": None, "db_level": None, "grid": [],
                           "groups": [], "skipped": [], "timing": timing}

    def skip(reason: str) -> dict:
        log.warning("song %s skipped: %s", song_id, reason)
        res["status"], res["reason"] = "skipped", reason
        timing["total"] = time.perf_counter() - t_all
        return res

    def prepare(rec):
        t = time.perf_counter()
        y = load(rec["path"], sr=sr)
        timing["load"] += time.perf_counter() - t
        t = time.perf_counter()
        y = np.ascontiguousarray(separator.separate(y, sr), dtype=np.float32)
        timing["separation"] += time.perf_counter() - t
        return y

    def embed_timed(y):
        t = time.perf_counter()
        e = embed(fingerprinter, y, sr, center=config.center, standardize=config.standardize)
        timing["encoder"] += time.perf_counter() - t
        return e

    if not covs:
        return skip("no covers")
    try:
        y = prepare(orig)
    except Exception as exc:  # an unreadable file of any kind: skipped, the batch goes on
        return skip(f"original {orig['path']} unreadable: {type(exc).__name__}: {exc}")
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if not np.isfinite(peak) or peak <= 10 ** (config.min_peak_db / 20):
        return skip(f"silent original (peak {20 * math.log10(peak) if peak > 0 else -math.inf:.1f} dBFS "
                    f"<= min_peak_db {config.min_peak_db})")
    if len(y) < config.d_min * sr:
        return skip(f"original is {len(y) / sr:.1f} s, shorter than d_min {config.d_min} s")
    emb_o = embed_timed(y)

    class _Timed:       # the encoder time of fragments re-embedded on their own
        window_config = fingerprinter.window_config

        @staticmethod
        def from_audio(a, sr=sr):
            t = time.perf_counter()
            try:
                return fingerprinter.from_audio(a, sr=sr)
            finally:
                timing["encoder"] += time.perf_counter() - t

    frag = fragmentation(y, emb_o, config, fingerprinter=_Timed, sr=sr)
    res["pause"], res["db_level"], res["grid"] = frag.pause, frag.db_level, frag.grid
    if len(frag.fragments) == 0:
        return skip(f"no fragment of {config.d_min:g}-{config.d_max:g} s between silences")

    cover_embs = []
    for rec in covs:
        try:
            yc = prepare(rec)
        except Exception as exc:
            reason = f"unreadable: {type(exc).__name__}: {exc}"
            log.warning("song %s: cover %s skipped: %s", song_id, rec["version_id"], reason)
            res["skipped"].append({"version_id": rec["version_id"], "reason": reason})
            continue
        cover_embs.append((rec, embed_timed(yc), pitch_frames(yc, sr)[0] if config.key_check else None))
    if not cover_embs:
        return skip("no readable cover")
    pitch_o, rate = pitch_frames(y, sr) if config.key_check else (None, 0.0)

    plot_data = None
    short: dict[str, int] = {}
    for (a, b), (fps, off) in zip(frag.fragments.tolist(), frag.fingerprints):
        d = b - a
        matches = []
        own = int(np.abs(emb_o.starts - (a + off)).argmin()) if len(emb_o.starts) else 0   # for cross_check
        for rec, emb_c, pitch_c in cover_embs:
            if d > emb_c.duration or len(fps) > len(emb_c.fps):
                short[rec["version_id"]] = short.get(rec["version_id"], 0) + 1
                continue
            truth = shifted_starts(lambda t: true_starts(rec.get("alignment"), t), a)
            for m in match_fragment(fps, off, d, emb_c, config, context=(emb_o, a, b)):
                if m.relevant and config.cross_check is not None and not cross_check(
                        emb_o, own, emb_c, m.lag, len(fps), config.cross_check):
                    m.relevant = False
                t = nearest(truth, m.start)
                matches.append({"version_id": rec["version_id"], "path": rec["path"], "split": rec["split"],
                                "start": rounded(m.start, 3), "end": rounded(m.end, 3), "score": rounded(m.score, 4),
                                "relevant": m.relevant, "true_offset": None if t is None else rounded(t, 3)})
                if pitch_c is not None and m.relevant:
                    matches[-1]["key_shift"] = key_shift(pitch_o, a, b, pitch_c, m.start, m.end, rate)
            if plot and plot_data is None:
                plot_data = (a, b, fps, emb_c, rec["version_id"])
        if matches:
            res["groups"].append({"start": rounded(a, 3), "end": rounded(b, 3), "matches": matches})
    if config.key_check:      # a relevant match must have its cover's transposition (the consensus)
        by_cover: dict[str, list] = {}
        for g in res["groups"]:
            for mt in g["matches"]:
                if mt["relevant"] and mt.get("key_shift") is not None:
                    by_cover.setdefault(mt["version_id"], []).append(mt)
        for ms in by_cover.values():
            agreed = consensus_shift([mt["key_shift"] for mt in ms])
            for mt in ms:
                if agreed is not None and mt["key_shift"] % 12 != agreed:
                    mt["relevant"] = False
    n_frag = len(frag.fragments)
    for vid, k in short.items():
        reason = f"shorter than {k} of {n_frag} fragment(s)"
        log.warning("song %s: cover %s: %s", song_id, vid, reason)
        res["skipped"].append({"version_id": vid, "reason": reason})
    if plot and plot_data is not None:
        res["_plot"] = _plot_png(song_id, *plot_data, config)
    timing["total"] = time.perf_counter() - t_all
    return res


def _plot_png(song_id, a, b, fps, emb_c, version_id, config: MiningConfig) -> bytes:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    curve = chadsp.xcorr(fps, emb_c.fps)
    peaks = chadsp.xcorr_match(fps, emb_c.fps, rel=config.beta_rel, irrel=config.beta_irrel)
    t = emb_c.starts[:len(curve)]
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    ax.plot(t, curve, lw=1, color="0.2", label="cross-correlation")
    rel = peaks["relevant"]
    ax.plot(t[peaks["lag"][rel]], peaks["score"][rel], "o", color="tab:green", label="relevant")
    ax.plot(t[peaks["lag"][~rel]], peaks["score"][~rel], "o", color="tab:orange", label="uncertain")
    ax.axhline(config.beta_rel, color="tab:green", ls="--", lw=0.8, label=f"beta_rel {config.beta_rel:g}")
    ax.axhline(config.beta_irrel, color="tab:red", ls="--", lw=0.8, label=f"beta_irrel {config.beta_irrel:g}")
    ax.set_xlabel(f"lag in cover {version_id} (s, start of the fragment's first window)")
    ax.set_ylabel("Pearson")
    ax.set_title(f"song {song_id}: original fragment {a:.2f}-{b:.2f} s vs cover {version_id}", fontsize=9)
    ax.set_ylim(-1, 1)
    ax.legend(fontsize=7, loc="lower right", ncol=3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
