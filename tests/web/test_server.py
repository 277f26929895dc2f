"""The studio on a real server: loopback by default, 20 parallel requests, raw traversal paths."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest

from pixelforge.cli import build_parser

SRC = Path(__file__).resolve().parents[2] / "src"


def test_serve_defaults_to_loopback():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.runs_dir) == ("127.0.0.1", 7860, "runs")
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "8000", "--runs-dir", "r"])
    assert (args.host, args.port, args.runs_dir) == ("0.0.0.0", 8000, "r")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pixelforge_serve_listens_on_127_0_0_1(web_runs, tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "pixelforge.cli", "serve", "--runs-dir", str(web_runs),
                             "--port", str(port), "--output-dir", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/runs")
                r = conn.getresponse()
                assert r.status == 200 and b'"gan"' in r.read()
                break
            except (ConnectionRefusedError, OSError):
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail(f"pixelforge serve did not come up: {proc.communicate(timeout=5)[0]}")
                time.sleep(0.2)
        # Bound to loopback only: the machine's other addresses do not answer.
        try:
            others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        except OSError:  # a host name that does not resolve
            others = set()
        try:  # the address of the default route (a UDP "connect" sends nothing)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("10.255.255.255", 1))
                others.add(probe.getsockname()[0])
        except OSError:
            pass
        for addr in others - {"0.0.0.0"}:
            if addr.startswith("127."):
                continue
            with pytest.raises(OSError):
                socket.create_connection((addr, port), timeout=2).close()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in out


def test_bad_port_is_a_one_line_error(capsys):
    from pixelforge.cli import main

    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be" in capsys.readouterr().err


def _get(base: str, path: str) -> tuple[int, bytes]:
    u = urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.request("GET", path)  # http.client sends the path as written: no dot-segment clean-up
    r = conn.getresponse()
    return r.status, r.read()


@pytest.mark.parametrize("path", [
    "/files/runs/../config.json",
    "/files/runs/gan/../../secret.txt",
    "/files/out/../runs/gan/loss.png",
    "/files/runs/gan/samples/../../../../../../etc/passwd",
    "/static/../studio.py",
    "/static/../../web/app.py",
    "/api/runs/../../etc",
])
def test_raw_dot_segments_never_leave_the_served_folders(live_server, web_runs, path):
    (web_runs.parent / "secret.txt").write_text("secret")
    status, body = _get(live_server, path)
    assert status == 404, (path, status)
    assert b"secret" not in body and b"root:" not in body and b"import" not in body


def test_twenty_parallel_requests_are_all_answered(live_server):
    import httpx

    def one(i: int) -> int:
        with httpx.Client(base_url=live_server, timeout=120) as c:
            if i % 4 == 0:
                r = c.post("/api/tabs/generate/sample", data={"model": "gan", "n": "8", "seed": str(i)})
                if r.status_code == 200:
                    assert c.get(r.json()["images"][0]["url"]).status_code == 200
                return r.status_code
            if i % 4 == 1:
                return c.post("/api/tabs/generate/sample",
                              data={"model": "diffusion", "n": "2", "steps": "2", "seed": str(i)}).status_code
            if i % 4 == 2:
                return c.get("/api/runs/gan").status_code
            return c.get("/").status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(20)))
    assert codes == [200] * 20


def test_serve_without_the_web_extra_is_a_one_line_error(monkeypatch, capsys):
    from pixelforge.cli import main

    monkeypatch.delitem(sys.modules, "pixelforge.web.app", raising=False)
    monkeypatch.setitem(sys.modules, "starlette.applications", None)  # as if Starlette were not installed
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'pixelforge[web]'" in err and "Traceback" not in err
