import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chadml import ChadError
from chadml.data import (FragmentRow, Manifest, ManifestError, SongRow, SongTable, alignment_pieces,
                         inverse_map_time, map_time, parse_interval)


def sample_manifest(root):
    rows = []
    for g in range(3):
        for f in range(2):
            rows.append(FragmentRow(f"song{g}", str(f), f"song{g}-{f}-o", "original", source_id=f"song{g}",
                                    start=1.0 / 3 + 8 * f, end=1.0 / 3 + 8 * f + 7.77, path=str(root / f"song{g}.flac"),
                                    true_offset=1.0 / 3 + 8 * f, split="train" if g < 2 else "test"))
            rows.append(FragmentRow(f"song{g}", str(f), f"song{g}-{f}-h", "humming", source_id=f"song{g}-{f}-h",
                                    start=0.0, end=7.77, path=str(root / "hum" / f"{g}-{f}.flac"), true_offset=0.0,
                                    split="train" if g < 2 else "test"))
            rows.append(FragmentRow(f"song{g}", str(f), f"song{g}-{f}-c", "cover", source_id="c",
                                    start=2.5, end=10.27, correlation=0.612345678901234567, check_by_crowdsource=True,
                                    path="/elsewhere/c.flac", split="train" if g < 2 else "test",
                                    extra={"note": "a, \"quoted\" cell"} if g == 0 else {}))
    return Manifest(rows)


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_manifest_round_trip_bit_for_bit(tmp_path, ext):
    m = sample_manifest(tmp_path)
    p = tmp_path / ("dataset" + ext)
    m.write(p)
    back = Manifest.read(p)
    assert back == m
    r = back.rows[-1]
    assert math.isnan(back.rows[0].correlation) and r.correlation == 0.612345678901234567
    assert back.rows[0].duration == m.rows[0].duration
    # writing the read-back manifest gives the same bytes
    p2 = tmp_path / ("again" + ext)
    back.write(p2)
    if ext == ".csv":
        assert p.read_bytes() == p2.read_bytes()
        text = p.read_text().splitlines()
        assert text[0] == "# chad manifest format_version=1"
        assert text[1].startswith("group_id,fragment_id,id,audio_type,")
        # paths under the manifest's folder are stored relative to it
        assert ",song0.flac," in text[2] and ",/elsewhere/c.flac," in text[4]
    assert Manifest.read(p2) == m
    assert sorted(os.listdir(tmp_path)) == sorted(["dataset" + ext, "again" + ext])


def test_relative_paths_resolve_against_manifest_folder(tmp_path):
    m = sample_manifest(tmp_path)
    m.write(tmp_path / "d.csv")
    (tmp_path / "sub").mkdir()
    os.replace(tmp_path / "d.csv", tmp_path / "sub" / "d.csv")
    back = Manifest.read(tmp_path / "sub" / "d.csv")
    assert back.rows[0].path == str(tmp_path / "sub" / "song0.flac")


def test_groups_select_concat(tmp_path):
    m = sample_manifest(tmp_path)
    g = m.groups()
    assert list(g) == [f"song{i}/{f}" for i in range(3) for f in range(2)]
    assert [r.audio_type for r in g["song1/0"]] == ["original", "humming", "cover"]
    assert len(m.select(split="test")) == 6
    assert len(m.select(split="train", audio_type=["humming", "original"])) == 8
    assert len(m.select(groups=["song0/1"])) == 3
    with pytest.raises(ValueError, match="audio_type"):
        m.select(audio_type="hum")
    both = Manifest.concat(m.select(split="train"), m.select(split="test"))
    assert len(both) == len(m) and set(r.id for r in both) == set(r.id for r in m)
    with pytest.raises(ManifestError, match="more than once"):
        Manifest.concat(m, m)
    assert [r.id for r in m][:2] == ["song0-0-o", "song0-0-h"]


def test_validate_paths_names_missing_files(tmp_path):
    m = sample_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="song0.flac"):
        m.validate(check_paths=True)
    for r in m:
        os.makedirs(os.path.dirname(r.path), exist_ok=True) if r.path.startswith(str(tmp_path)) else None
    sub = m.select(audio_type="original")
    for r in sub:
        open(r.path, "wb").close()
    assert sub.validate(check_paths=True) is sub
    bad = Manifest([FragmentRow("g", "0", "x", "original", start=5.0, end=2.0)])
    with pytest.raises(ManifestError, match="start <= end"):
        bad.validate()


def test_row_checks():
    with pytest.raises(ValueError, match="audio_type"):
        FragmentRow("g", "0", "x", "remix")
    with pytest.raises(ValueError, match="split"):
        FragmentRow("g", "0", "x", "cover", split="dev")
    with pytest.raises(ValueError, match="start"):
        FragmentRow("g", "0", "x", "cover", start="soon")
    r = FragmentRow("g", 3, "x", "cover", start=1, end=4)
    assert r.fragment_id == "3" and r.duration == 3.0 and r.key == "g/3"


OFFICIAL = """group_id,fragment_id,id,audio_type,youtube_id,interval,correlation,check_by_crowdsource,is_available,duration
0a1b2c,0,0a1b2c_0_orig,original,dQw4w9WgXcQ,"(12.0, 24.5)",,False,True,12.5
0a1b2c,0,0a1b2c_0_c1,cover,abcdefghijk,"(30.25, 42.75)",0.734,False,True,12.5
0a1b2c,0,0a1b2c_0_c2,cover,lmnopqrstuv,"(5.0, 17.5)",0.41,True,False,12.5
0a1b2c,1,0a1b2c_1_h,humming,,"(0.0, 9.0)",,False,True,9.0
"""


def test_official_chad_layout(tmp_path):
    p = tmp_path / "metadata" / "dataset.csv"
    p.parent.mkdir()
    p.write_text(OFFICIAL)
    m = Manifest.read(p)
    assert len(m) == 4 and list(m.groups()) == ["0a1b2c/0", "0a1b2c/1"]
    o, c1, c2, h = m.rows
    assert (o.start, o.end, o.duration, o.source_id, o.path) == (12.0, 24.5, 12.5, "dQw4w9WgXcQ", "")
    assert math.isnan(o.correlation) and c1.correlation == 0.734
    assert c2.check_by_crowdsource and not c1.check_by_crowdsource
    assert c2.extra == {"is_available": "False"} and h.source_id == ""
    assert h.audio_type == "humming" and o.split == ""
    # with the downloaded fragments folder: paths of the cut files, times inside them
    m2 = Manifest.read(p, fragments_dir=tmp_path / "fragments", ext=".wav")
    c = m2.rows[1]
    assert c.path == str(tmp_path / "fragments" / "0a1b2c" / "0" / "0a1b2c_0_c1.wav")
    assert (c.start, c.end) == (0.0, 12.5) and c.extra["interval"] == "(30.25, 42.75)"
    with pytest.raises(FileNotFoundError, match="0a1b2c_0_orig.wav"):
        m2.validate(check_paths=True)
    # and it can be written in chad's layout and read back unchanged
    m.write(tmp_path / "ours.csv")
    assert Manifest.read(tmp_path / "ours.csv") == m


def test_missing_columns_named(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("group_id,id,audio_type,start\ng,x,original,0\n")
    with pytest.raises(ManifestError, match=r"bad\.csv.*fragment_id, end") as exc:
        Manifest.read(p)
    assert isinstance(exc.value, ChadError) and isinstance(exc.value, ValueError)
    q = tmp_path / "bad_official.csv"
    q.write_text("group_id,fragment_id,id,audio_type,interval\n")
    with pytest.raises(ManifestError, match="bad_official.csv.*duration"):
        Manifest.read(q)
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        Manifest.read(tmp_path / "nothere.csv")
    r = tmp_path / "badcell.csv"
    r.write_text("group_id,fragment_id,id,audio_type,start,end\ng,0,x,original,0,abc\n")
    with pytest.raises(ManifestError, match=r"badcell.csv, row 1 \(id 'x'\).*end"):
        Manifest.read(r)
    s = tmp_path / "newer.csv"
    s.write_text("# chad manifest format_version=99\ngroup_id,fragment_id,id,audio_type,start,end\n")
    with pytest.raises(ManifestError, match="format_version 99"):
        Manifest.read(s)


def test_empty_manifest_round_trip(tmp_path):
    Manifest().write(tmp_path / "e.csv")
    assert len(Manifest.read(tmp_path / "e.csv")) == 0


def test_parse_interval():
    assert parse_interval("(1, 2.5)") == (1.0, 2.5)
    assert parse_interval("[3.0,4.0]") == (3.0, 4.0)
    with pytest.raises(ValueError, match="interval"):
        parse_interval("1-2")


# ------------------------------------------------------------------ songs and time maps

def song_table(root):
    return SongTable([
        SongRow("s1", "s1-o", "original", str(root / "s1.flac"), 60.0, "train", [[0, 0], [60, 60]]),
        SongRow("s1", "s1-c0", "cover", str(root / "s1c0.flac"), 58.5, "train",
                [[None, 0], [0, 3], [20, 25], [30, 25], [60, 55.5]], extra={"key_shift": "-3"}),
        SongRow("s2", "s2-o", "original", str(root / "s2.flac"), 40.0, "test", [[0, 0], [40, 40]]),
        SongRow("s3", "s3-c0", "cover", str(root / "x.flac"), 40.0, "test", []),   # no original
    ])


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_song_table_round_trip(tmp_path, ext):
    t = song_table(tmp_path)
    t.write(tmp_path / ("songs" + ext))
    back = SongTable.read(tmp_path / ("songs" + ext))
    assert back == t
    assert back.rows[1].alignment[0] == [None, 0.0]
    songs = back.songs()
    assert list(songs) == ["s1", "s2"]            # s3 has no original: left out
    assert songs["s1"][0].version_id == "s1-o" and [c.version_id for c in songs["s1"][1]] == ["s1-c0"]
    assert songs["s2"][1] == []
    # a song table is not a manifest
    if ext == ".csv":
        with pytest.raises(ManifestError, match="songs table, not a manifest"):
            Manifest.read(tmp_path / "songs.csv")


def test_map_time_known_maps():
    al = [[None, 0], [0, 3], [20, 25], [30, 25], [60, 55]]   # intro 3 s, 0-20 slower, 20-30 skipped
    t = np.array([0.0, 10.0, 20.0, 25.0, 30.0, 45.0, 60.0, 61.0, -1.0])
    v = map_time(al, t)
    np.testing.assert_allclose(v, [3.0, 14.0, 25.0, np.nan, 25.0, 40.0, 55.0, np.nan, np.nan])
    assert map_time(al, 10.0).shape == ()
    np.testing.assert_allclose(inverse_map_time(al, [0.0, 2.9, 3.0, 14.0, 25.0, 40.0, 56.0]),
                               [np.nan, np.nan, 0.0, 10.0, 30.0, 45.0, np.nan])
    # a repeated section: 10..20 sung twice
    rep = [[0, 0], [20, 20], [10, 20], [20, 30], [40, 50]]
    np.testing.assert_allclose(map_time(rep, [5.0, 15.0, 30.0]), [5.0, 15.0, 40.0])
    allv = map_time(rep, [5.0, 15.0, 30.0], all=True)
    assert allv.shape == (3, 2)
    np.testing.assert_allclose(allv, [[5.0, np.nan], [15.0, 25.0], [40.0, np.nan]])
    # unknown alignment: NaN
    assert np.isnan(map_time([], [1.0, 2.0])).all()
    assert len(alignment_pieces(al)) == 2
    with pytest.raises(ValueError, match="must not decrease"):
        map_time([[0, 5], [1, 4]], 0.5)


@given(st.lists(st.tuples(st.floats(0.5, 20), st.floats(0.8, 1.25), st.booleans()), min_size=1, max_size=6),
       st.floats(0, 5))
def test_map_time_inverse_of_inverse(segments, intro):
    # build a random monotone-in-version map of consecutive original segments (some skipped)
    al, o, v = [[None, 0.0]], 0.0, intro
    for length, rate, skip in segments:
        if skip:
            o += length
        al.append([o, v])
        al.append([o + length, v + length / rate])
        o, v = o + length, v + length / rate
    if intro == 0:
        al = al[1:]
    pieces = alignment_pieces(al)
    for o0, o1, v0, v1 in pieces:
        t = np.linspace(o0, o1, 7)[1:-1]
        np.testing.assert_allclose(map_time(al, t), np.interp(t, [o0, o1], [v0, v1]), atol=1e-9)
        np.testing.assert_allclose(inverse_map_time(al, map_time(al, t)), t, atol=1e-9)


def test_a_long_cell_reads_back(tmp_path):
    # a tune's notes as JSON in a song row's extra can exceed csv's default 128 KiB field limit
    row = SongRow("s", "s-o", "original", "a.flac", 1.0, "train", extra={"tune_notes": "x" * 300_000})
    SongTable([row]).write(tmp_path / "songs.csv")
    assert SongTable.read(tmp_path / "songs.csv").rows[0].extra["tune_notes"] == "x" * 300_000
