"""The recording WebSocket without a browser: a real server, a real WebSocket client pushing a RAVDESS clip's
PCM, the live Pipeline behind it. Windows come back as they are scored, then "stop" gives the session's CSV."""

from __future__ import annotations

import csv
import io
import json
import time

import numpy as np
import pytest
from conftest import DATA, load_clip
from web_server import SLOW_MACHINE, start_server
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("rec"), "--transcriber", "pocketsphinx",
                     config=SLOW_MACHINE + "[web]\nmax_recordings = 1\n")
    yield s
    s.stop()


def ws_url(server, query="rate=16000&channels=1"):
    return server.url.replace("http://", "ws://") + "ws/record?" + query


def test_record_streams_windows_and_stop_gives_the_csv(server):
    clips = [load_clip(p) for p in sorted(DATA.glob("*.flac"))[2:4]]
    gap = np.zeros(16000, dtype=np.int16)
    audio = np.concatenate([gap, clips[0], gap, gap, clips[1], gap])
    messages: list[dict] = []
    with connect(ws_url(server), open_timeout=30) as ws:
        hello = json.loads(ws.recv(timeout=60))
        assert hello["type"] == "hello" and "p_angry" in hello["columns"]
        step = 1600  # 100 ms, sent at 4x real time
        for i in range(0, len(audio), step):
            ws.send(audio[i:i + step].astype("<i2").tobytes())
            time.sleep(0.025)
            while True:  # collect what has arrived meanwhile
                try:
                    messages.append(json.loads(ws.recv(timeout=0)))
                except TimeoutError:
                    break
        windows_before_stop = [m for m in messages if m["type"] == "window"]
        ws.send("stop")
        end = None
        while end is None:
            m = json.loads(ws.recv(timeout=120))
            messages.append(m)
            if m["type"] == "end":
                end = m
    assert windows_before_stop, "no window was scored while audio was streaming"
    windows = [m["row"] for m in messages if m["type"] == "window"]
    rows = [m["row"] for m in messages if m["type"] == "row"]
    assert len(windows) >= 2 and len(rows) == len(windows)
    table = list(csv.DictReader(io.StringIO(end["csv"])))
    assert len(table) == len(rows) == end["rows"]
    assert [r["emotion"] for r in table] == [r["emotion"] for r in rows]
    assert any(r["text"] for r in table), "no words reached the CSV"
    assert end["dropped_blocks"] == 0 and end["error"] == ""
    assert any(m["type"] == "status" for m in messages)


def test_bad_parameters_and_too_many_recordings(server):
    with connect(ws_url(server, "rate=abc"), open_timeout=30) as ws:
        m = json.loads(ws.recv(timeout=30))
        assert m["type"] == "error" and "integer" in m["error"]
    with connect(ws_url(server, "rate=1000"), open_timeout=30) as ws:
        m = json.loads(ws.recv(timeout=30))
        assert m["type"] == "error" and "8000..192000 Hz" in m["error"]
    with connect(ws_url(server), open_timeout=30) as first:
        assert json.loads(first.recv(timeout=60))["type"] == "hello"
        with connect(ws_url(server), open_timeout=30) as second:
            m = json.loads(second.recv(timeout=30))
            assert m["type"] == "error" and "recordings are running" in m["error"]
        first.send("stop")
        while json.loads(first.recv(timeout=60))["type"] != "end":
            pass
