"""A real statsd collector for tests: a UDP socket on loopback that records every packet."""

from __future__ import annotations

import socket
import time


class StatsdListener:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []

    def drain(self, quiet_for: float = 0.5) -> list[str]:
        """Read until nothing has arrived for ``quiet_for`` seconds."""
        deadline = time.monotonic() + quiet_for
        while time.monotonic() < deadline:
            try:
                packet, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.lines.extend(line for line in packet.decode().splitlines() if line)
            deadline = time.monotonic() + quiet_for
        return self.lines

    def parsed(self):
        """(name, value, kind) of every line received, in order."""
        for line in self.drain():
            name, rest = line.split(":", 1)
            value, kind = rest.split("|")[:2]
            yield name, float(value), kind

    def gauges(self) -> dict[str, float]:
        """The last value of every gauge (a negative gauge arrives as a reset to 0, then it)."""
        return {name: value for name, value, kind in self.parsed() if kind == "g"}

    def counters(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, value, kind in self.parsed():
            if kind == "c":
                totals[name] = totals.get(name, 0.0) + value
        return totals

    def close(self) -> None:
        self.sock.close()
