"""Mining a song table (:func:`mine`): the songs mined locally or as Ray tasks, each song's result kept in a
workdir as it finishes (a rerun skips finished songs), and the manifest of aligned fragment groups written
from them (:func:`song_result_rows`) with the run's summary (:func:`read_summary`)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from typing import Iterable

from ..data import FragmentRow, Manifest
from ..errors import ChadError
from ..separation import get_separator
from ..util import atomic_write_bytes, atomic_write_text, progress as progress_bar
from .config import FORMAT_VERSION, MiningConfig
from .embedding import window_seconds
from .song import mine_song, rounded, song_record

log = logging.getLogger(__name__)

__all__ = ["mine", "read_summary", "song_result_rows"]


def song_result_rows(result: dict) -> list:
    """The manifest rows (``chadml.data.FragmentRow``) of one song's result, in a fixed order.

    As in CHAD, ``group_id`` is the song and ``fragment_id`` the fragment: ``"c<k>"`` (C part; k: its rank
    in time order among the song's groups), apart from the humming fragments' ids of the same song, so
    the rows of one aligned group share ``key == "<song_id>/c<k>"``; ``id`` is ``"<song_id>/c<k>/<j>"``
    with ``j = 0`` the original fragment, then the cover fragments in cover order and time.
    ``true_offset``: where the original fragment's start truly is in that recording, for songs whose
    alignment is known (generated data); NaN otherwise.
    """
    rows = []
    if result.get("status") != "ok":
        return rows
    sid = result["song_id"]
    orig = result["original"]
    nan = float("nan")
    for k, g in enumerate(result["groups"]):
        dur = rounded(g["end"] - g["start"], 3)
        rows.append(FragmentRow(group_id=sid, fragment_id=f"c{k}", id=f"{sid}/c{k}/0", audio_type="original",
                                source_id=orig["version_id"], start=g["start"], end=g["end"], correlation=1.0,
                                check_by_crowdsource=False, duration=dur, path=orig["path"],
                                true_offset=g["start"] if orig.get("alignment") else nan, split=orig["split"]))
        for j, m in enumerate(g["matches"], start=1):
            t = m.get("true_offset")
            rows.append(FragmentRow(group_id=sid, fragment_id=f"c{k}", id=f"{sid}/c{k}/{j}", audio_type="cover",
                                    source_id=m["version_id"], start=m["start"], end=m["end"],
                                    correlation=m["score"], check_by_crowdsource=not m["relevant"],
                                    duration=rounded(m["end"] - m["start"], 3),
                                    path=m["path"], true_offset=nan if t is None else t,
                                    split=m.get("split", orig["split"])))
    return rows


def _safe_name(song_id: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(song_id))[:60]
    return f"{s}-{hashlib.sha1(str(song_id).encode()).hexdigest()[:10]}.json"


def _song_jobs(songs, song_ids):
    table = songs.songs()
    ids = sorted(table, key=str) if song_ids is None else list(song_ids)
    jobs = []
    for sid in ids:
        if sid not in table:
            raise ValueError(f"song_ids: {sid!r} is not in the song table")
        o, covers = table[sid]
        jobs.append((str(sid), None if o is None else song_record(o), [song_record(c) for c in covers]))
    return jobs


def _job(sid, orig, covers, fingerprinter, config, separator, plot):
    if orig is None:
        log.warning("song %s skipped: no original in the song table", sid)
        return {"format_version": FORMAT_VERSION, "song_id": sid, "status": "skipped",
                "reason": "no original in the song table", "original": None, "groups": [], "skipped": [],
                "grid": [], "timing": {"load": 0.0, "separation": 0.0, "encoder": 0.0, "total": 0.0}}
    return mine_song(sid, orig, covers, fingerprinter, config=config, separator=separator, plot=plot)


def _ray_job(sid, orig, covers, fingerprinter, config_dict, separator, plot):
    return _job(sid, orig, covers, fingerprinter, MiningConfig.from_dict(config_dict), separator, plot)


def mine(songs, fingerprinter, out_manifest: str | os.PathLike, *, config: MiningConfig | None = None,
         workdir: str | os.PathLike | None = None, engine: str = "local", address: str | None = None,
         plots_dir: str | os.PathLike | None = None, progress: bool = True, separator=None,
         song_ids: Iterable[str] | None = None, model_id: str | None = None):
    """Mine every song of a SongTable; write the manifest of aligned fragment groups.

    Parameters
    ----------
    songs : chadml.data.SongTable
        Originals and their covers (``songs.songs()`` groups them).
    fingerprinter : chadml.models.encoder.Fingerprinter
        The model M_i (anything with ``from_audio(y, sr) -> (fps, starts)`` and ``window_config``).
    out_manifest : path
        The manifest written (atomically) at the end.
    workdir : path, optional
        Per-song results (one JSON each, written atomically as each song finishes) and ``summary.json``.
        A rerun with the same workdir skips finished songs, so an interrupted job loses nothing; the final
        manifest is built from the per-song results in song-id order, hence equal to an uninterrupted
        run's. Default: ``<out_manifest>.work``. A workdir made with another config or model is refused
        (``ChadError``); delete a song's JSON to mine it again.
    engine : {"local", "ray"}
        ``"ray"`` sends each song as a Ray task (``pip install chad[distributed]``); ``address``: the Ray
        cluster (default: an already initialised Ray, else a local one). Workers read the audio paths
        themselves (use paths all nodes see); results come back to this process, which writes them.
    plots_dir : path, optional
        A PNG per song: the cross-correlation of its first fragment against its first cover, with the
        picked peaks and both thresholds.
    separator : chadml.separation.Separator or name, optional
        Vocal separation before fingerprinting (default: identity: vocal stems).
    song_ids : iterable of str, optional
        Mine only these songs (default: all, sorted by id).
    model_id : str, optional
        The model's identity (``chadml.models.checkpoint_id``), kept in the workdir to refuse mixing models.

    Returns
    -------
    chadml.data.Manifest
        The mined groups; the run's summary (counts, ``skipped`` songs with reasons, timings) is in
        ``<workdir>/summary.json`` (``read_summary(workdir)``).

    Example
    -------
    >>> from chadml.data import SongTable
    >>> from chadml.models import load_fingerprinter
    >>> fp = load_fingerprinter("m0.pt")                                        # doctest: +SKIP
    >>> man = mine(SongTable.read("corpus/songs.csv"), fp, "mined.csv")         # doctest: +SKIP
    >>> read_summary("mined.csv.work")["relevant"]                              # doctest: +SKIP
    412
    """
    config = config or MiningConfig()
    if not isinstance(config, MiningConfig):
        raise TypeError(f"config must be a MiningConfig, got {type(config).__name__}")
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    separator = get_separator(separator)
    out_manifest = os.fspath(out_manifest)
    workdir = os.fspath(workdir) if workdir is not None else out_manifest + ".work"
    os.makedirs(os.path.join(workdir, "songs"), exist_ok=True)
    meta = {"format_version": FORMAT_VERSION, "config": config.to_dict(), "model_id": model_id,
            "window_s": window_seconds(fingerprinter),
            "separator": getattr(separator, "name", type(separator).__name__)}
    meta_path = os.path.join(workdir, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            old = json.load(f)
        if old != meta:
            raise ChadError(f"workdir {workdir} holds results of another mining config or model "
                            f"({old} != {meta}); use another --workdir or delete it")
    else:
        atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True))
    if plots_dir is not None:
        os.makedirs(plots_dir, exist_ok=True)

    jobs = _song_jobs(songs, song_ids)
    path_of = {sid: os.path.join(workdir, "songs", _safe_name(sid)) for sid, _, _ in jobs}
    results: dict[str, dict] = {}
    todo = []
    for job in jobs:
        p = path_of[job[0]]
        if os.path.exists(p):
            with open(p) as f:
                results[job[0]] = json.load(f)
        else:
            todo.append(job)
    bar = progress_bar(total=len(jobs), initial=len(jobs) - len(todo), desc="mining", unit="song",
                        **({} if progress else {"disable": True}))
    t0 = time.perf_counter()

    def finish(res: dict):
        png = res.pop("_plot", None)
        if png is not None and plots_dir is not None:
            atomic_write_bytes(os.path.join(plots_dir, _safe_name(res["song_id"])[:-5] + ".png"), png)
        atomic_write_text(path_of[res["song_id"]], json.dumps(res, sort_keys=True))
        results[res["song_id"]] = json.loads(json.dumps(res))
        bar.update(1)

    plot = plots_dir is not None
    try:
        if engine == "local" or not todo:
            for sid, o, c in todo:
                finish(_job(sid, o, c, fingerprinter, config, separator, plot))
        else:
            _run_ray(todo, fingerprinter, config, separator, plot, address, finish)
    finally:
        bar.close()
    wall = time.perf_counter() - t0

    rows = []
    for sid, _, _ in jobs:
        rows.extend(song_result_rows(results[sid]))
    manifest = Manifest(rows)
    manifest.write(out_manifest)
    summary = _summary([results[sid] for sid, _, _ in jobs], rows, wall, len(todo))
    atomic_write_text(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=1, sort_keys=True))
    log.info("mined %d songs (%d skipped): %d groups, %d relevant and %d uncertain cover fragments -> %s",
             summary["songs"], len(summary["skipped"]), summary["groups"], summary["relevant"],
             summary["uncertain"], out_manifest)
    return manifest


def _run_ray(todo, fingerprinter, config, separator, plot, address, finish):
    try:
        import ray
    except ImportError as exc:
        raise ChadError("engine 'ray' needs Ray: pip install 'chad[distributed]' (or ray>=2.9)") from exc
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(_ray_job)
        fp_ref = ray.put(fingerprinter)
        cfg = config.to_dict()
        pending = [remote.remote(sid, o, c, fp_ref, cfg, separator, plot) for sid, o, c in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                finish(ray.get(ref))
    finally:
        if started:
            ray.shutdown()


def _summary(results: list[dict], rows: list, wall: float, n_mined_now: int) -> dict:
    covers = [r for r in rows if r.audio_type == "cover"]
    t = {k: sum(float(r.get("timing", {}).get(k, 0.0)) for r in results)
         for k in ("load", "separation", "encoder", "total")}
    return {
        "format_version": FORMAT_VERSION,
        "songs": len(results),
        "mined": sum(r["status"] == "ok" for r in results),
        "skipped": [{"song_id": r["song_id"], "reason": r["reason"]} for r in results if r["status"] != "ok"],
        "skipped_covers": [{"song_id": r["song_id"], **s} for r in results for s in r.get("skipped", [])],
        "groups": len({r.key for r in rows}),
        "fragments": len(rows),
        "relevant": sum(not r.check_by_crowdsource for r in covers),
        "uncertain": sum(bool(r.check_by_crowdsource) for r in covers),
        "hours": sum(float(r.duration) for r in rows) / 3600.0,
        "cover_hours": sum(float(r.duration) for r in covers) / 3600.0,
        "timing": {**t, "dsp": t["total"] - t["encoder"], "wall_this_run": wall, "songs_this_run": n_mined_now},
    }


def read_summary(workdir: str | os.PathLike) -> dict:
    """The summary ``mine`` wrote into ``workdir``."""
    p = os.path.join(os.fspath(workdir), "summary.json")
    if not os.path.exists(p):
        raise FileNotFoundError(f"no mining summary at {p}: run mine() with this workdir first")
    with open(p) as f:
        return json.load(f)
