"""Process groups as a supervisor stops them: the leader, its children, and what ignores SIGTERM;
a server's health URL."""

from __future__ import annotations

import http.server
import subprocess
import threading

from governance import processes


def group_of(command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", command], start_new_session=True)


def test_stop_group_ends_the_leader_and_its_children() -> None:
    process = group_of("sleep 60 & sleep 60 & wait")
    processes.stop_group(process.pid, grace=10, reap=process.poll)
    assert process.poll() is not None
    assert not processes.group_alive(process.pid)


def test_stop_group_kills_what_ignores_sigterm() -> None:
    process = group_of("trap '' TERM; sleep 60 & wait")
    processes.stop_group(process.pid, grace=0.5, reap=process.poll)
    process.wait(timeout=10)
    assert not processes.group_alive(process.pid)


def test_signal_group_says_when_the_group_is_gone() -> None:
    live = group_of("sleep 60")
    assert processes.signal_group(live.pid, 0)
    processes.stop_group(live.pid, grace=10, reap=live.poll)
    ended = subprocess.Popen(["true"], start_new_session=True)  # a group of one, no children
    ended.wait(timeout=10)
    assert not processes.signal_group(ended.pid, 0)


def test_http_ok_is_true_only_for_a_2xx_answer() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert processes.http_ok(f"{base}/health")
        assert not processes.http_ok(f"{base}/down")
        assert not processes.port_free(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
    assert not processes.http_ok(base + "/health", timeout=1)
