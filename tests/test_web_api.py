"""``voice-monitor serve``: a real server process on 127.0.0.1 and a real HTTP client (httpx).

The upload's rows must be exactly what ``voice-monitor score --format jsonl`` writes for the same file (with
pocketsphinx, so the words are compared too); bad uploads are 4xx JSON and the server keeps serving; uploads
never stay on disk; at most ``max_parallel`` files are scored at once; a token is required when set.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import httpx
import pytest
from conftest import DATA, REPO, VOICE_MONITOR
from web_server import start_server
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

CONFIG = """
[web]
max_upload_mb = 1.0
max_parallel = 1
"""
CLIP = "03-01-05-02-01-01-02.flac"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    uploads = tmp / "tmp"
    uploads.mkdir()
    s = start_server(tmp / "srv", "--transcriber", "pocketsphinx", config=CONFIG, env={"TMPDIR": str(uploads)})
    s.uploads = uploads
    yield s
    s.stop()


def post(server, path, name=None, data=None, **kw) -> httpx.Response:
    content = data if data is not None else path.read_bytes()
    return httpx.post(server.url + "api/score", files={"file": (name or path.name, content)}, timeout=120, **kw)


def cli_jsonl(tmp_path, name: str) -> tuple[dict, list[dict]]:
    """What `voice-monitor score NAME --format jsonl` writes, run beside the clip so its path is NAME."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    out, win = tmp_path / "files.jsonl", tmp_path / "windows.jsonl"
    proc = subprocess.run([*VOICE_MONITOR, "score", name, "-o", str(out), "-w", str(win), "--format", "jsonl",
                           "--transcriber", "pocketsphinx", "-j", "1", "-q", "--config", str(REPO / "config.toml")],
                          cwd=DATA, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    files = [json.loads(x) for x in out.read_text().splitlines()]
    windows = [json.loads(x) for x in win.read_text().splitlines()]
    assert len(files) == 1
    return files[0], windows


def test_health(server):
    r = httpx.get(server.url + "api/health", timeout=10)
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok"
    assert len(h["labels"]) == 8 and "angry" in h["labels"]
    assert h["max_parallel"] == 1 and h["max_upload_mb"] == 1.0 and h["token_required"] is False


def test_score_equals_the_batch_cli_jsonl(server, tmp_path):
    r = post(server, DATA / CLIP)
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"summary", "windows"}
    summary, windows = cli_jsonl(tmp_path, CLIP)
    assert got["summary"] == summary
    assert got["windows"] == windows
    assert list(got["summary"]) == list(summary)  # same fields, same order
    assert summary["emotion"] and summary["windows"] >= 1 and summary["text"], "a meaningful comparison"
    assert got["summary"]["path"] == CLIP


def test_the_client_file_name_is_only_a_name(server):
    r = post(server, DATA / CLIP, name="../../etc/evil name.flac")
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["path"] == "evil name.flac"
    assert not list(server.uploads.iterdir()), "the upload stayed on disk"


@pytest.mark.parametrize("name,data,status,words", [
    ("corrupt.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(2000), 422, "not a readable audio file"),
    ("empty.flac", b"", 422, "empty"),
    ("big.wav", b"\0" * (1024 * 1024 + 10), 413, "larger than the server's limit"),
])
def test_bad_uploads_are_4xx_json_and_the_server_goes_on(server, name, data, status, words):
    r = post(server, DATA / CLIP, name=name, data=data)
    assert r.status_code == status, r.text
    body = r.json()
    assert words in body["error"] and body["status"] == status
    assert "\n" not in body["error"] and str(server.uploads) not in body["error"]
    assert not list(server.uploads.iterdir()), "a refused upload stayed on disk"
    again = post(server, DATA / CLIP)
    assert again.status_code == 200 and again.json()["summary"]["emotion"]


def test_malformed_requests(server):
    r = httpx.post(server.url + "api/score", data={"other": "x"}, timeout=30)
    assert r.status_code == 415 and "multipart" in r.json()["error"]
    r = httpx.post(server.url + "api/score", files={"notfile": ("a.wav", b"abc")}, timeout=30)
    assert r.status_code == 400 and "'file'" in r.json()["error"]
    r = httpx.get(server.url + "api/nothing", timeout=30)
    assert r.status_code == 404 and "error" in r.json()
    assert httpx.get(server.url + "api/health", timeout=10).status_code == 200


def test_at_most_max_parallel_files_are_scored_at_once(server):
    clips = sorted(DATA.glob("*.flac"))[:3]
    results: dict[str, httpx.Response] = {}
    seen: list[dict] = []

    def send(p):
        results[p.name] = post(server, p)

    threads = [threading.Thread(target=send, args=(p,)) for p in clips]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        seen.append(httpx.get(server.url + "api/health", timeout=10).json())
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results.values()), [r.text for r in results.values()]
    assert {r.json()["summary"]["path"] for r in results.values()} == {p.name for p in clips}
    assert max(h["scoring"] for h in seen) == 1  # [web] max_parallel = 1
    assert max(h["waiting"] for h in seen) >= 1, "no upload ever waited for the busy slot"
    assert not list(server.uploads.iterdir())


def test_a_token_is_required_when_set(tmp_path):
    s = start_server(tmp_path, "--token", "s3cret", "--transcriber", "none")
    try:
        clip = DATA / CLIP
        assert post(s, clip).status_code == 401
        assert post(s, clip, headers={"Authorization": "Bearer wrong"}).status_code == 403
        ok = post(s, clip, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["summary"]["emotion"]
        assert httpx.post(s.url + "api/score?token=s3cret", files={"file": (CLIP, clip.read_bytes())},
                          timeout=60).status_code == 200
        assert httpx.get(s.url, timeout=10).status_code == 401
        assert httpx.get(s.url + "?token=s3cret", timeout=10).status_code == 200
        assert httpx.get(s.url + "api/health", timeout=10).json()["token_required"] is True
        assert httpx.get(s.url + "api/mic/events", timeout=10).status_code == 401
        ws = s.url.replace("http://", "ws://") + "ws/record"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws, open_timeout=30)
        assert refused.value.response.status_code == 403
        with connect(ws + "?token=s3cret", open_timeout=30) as ok_ws:
            assert json.loads(ok_ws.recv(timeout=60))["type"] == "hello"
            ok_ws.send("stop")
            while json.loads(ok_ws.recv(timeout=60))["type"] != "end":
                pass
    finally:
        s.stop()


def test_another_address_gets_a_generated_token(tmp_path):
    s = start_server(tmp_path, "--host", "0.0.0.0", "--transcriber", "none")
    try:
        assert len(s.token) >= 16, s.output()
        local = s.url.replace("0.0.0.0", "127.0.0.1")
        r = httpx.post(local + "api/score", files={"file": (CLIP, (DATA / CLIP).read_bytes())}, timeout=60)
        assert r.status_code == 401
        r = httpx.post(local + "api/score", files={"file": (CLIP, (DATA / CLIP).read_bytes())}, timeout=60,
                       headers={"Authorization": f"Bearer {s.token}"})
        assert r.status_code == 200
    finally:
        s.stop()


@pytest.mark.parametrize("toml,words", [
    ("[web]\nmax_parallel = 0\n", "[web] max_parallel must be >= 1"),
    ("[web]\nmax_upload_mb = -1\n", "[web] max_upload_mb must be > 0"),
    ("[web]\nport = 70000\n", "[web] port must be 0..65535"),
    ("[web]\nhots = \"x\"\n", "unknown key 'hots' in [web]"),
])
def test_bad_web_settings_are_one_line_errors(tmp_path, toml, words):
    cfg = tmp_path / "config.toml"
    cfg.write_text(toml)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([*VOICE_MONITOR, "serve", "--config", str(cfg)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_busy_port_is_a_one_line_error(server):
    port = server.url.rsplit(":", 1)[1].strip("/")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([*VOICE_MONITOR, "serve", "--port", port, "--transcriber", "none"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "pick another --port" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert httpx.get(server.url + "api/health", timeout=10).status_code == 200


def test_other_sites_cannot_use_a_loopback_server(server):
    """DNS rebinding (a page of another site whose name now points at 127.0.0.1) and cross-site WebSockets."""
    r = httpx.post(server.url + "api/score", files={"file": (CLIP, (DATA / CLIP).read_bytes())}, timeout=60,
                   headers={"Host": "evil.example:80"})
    assert r.status_code == 403 and "127.0.0.1 or localhost" in r.json()["error"]
    assert httpx.get(server.url, headers={"Host": "evil.example"}, timeout=10).status_code == 403
    assert httpx.get(server.url.replace("127.0.0.1", "localhost"), timeout=10).status_code == 200
    ws = server.url.replace("http://", "ws://") + "ws/record"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws, origin="http://evil.example", open_timeout=30)
    assert refused.value.response.status_code == 403
    with connect(ws, origin=server.url.rstrip("/"), open_timeout=30) as same_site:
        assert json.loads(same_site.recv(timeout=60))["type"] == "hello"
        same_site.send("stop")
        while json.loads(same_site.recv(timeout=60))["type"] != "end":
            pass
