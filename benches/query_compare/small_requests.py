"""Times small API requests (label names, a short label's values, /-/healthy) with as little
client overhead as Python allows: one kept-alive connection per server, TCP_NODELAY, each
request written in one sendall and its body read by Content-Length, no HTTP library. Prints the
median and 10th percentile of RUNS timed requests (after 50 untimed ones) per server and path.

Where the client runs matters: promcore's router is pinned to core 0, so run it pinned
(`taskset -c 0 ...` and `taskset -c 1 ...`) and report both.

COLD=1 makes every request carry its own never-reached `limit` (10^9 + a counter), so promcore
gives none of the whole label answers it keeps (Prometheus 2.42 ignores the parameter); it merges
them from the shard lists it kept, without asking the shards. cold_after_change.py times requests
right after a change, which do ask them.

usage: PORTS=19391,19392 [COLD=1] [RUNS=300] python3 small_requests.py PATH...
"""

import os
import socket
import statistics
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def get(s, path):
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = None
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length is None:
        raise SystemExit("no Content-Length in: " + head.decode())
    while len(body) < length:
        body += s.recv(1 << 20)
    return body


def main():
    ports = [int(p) for p in os.environ.get("PORTS", "19391,19392").split(",")]
    cold = os.environ.get("COLD") == "1"
    runs = int(os.environ.get("RUNS", "300"))
    limit = 10**9
    for port in ports:
        s = connect(port)
        for path in sys.argv[1:]:
            times = []
            for i in range(runs + (0 if cold else 50)):
                target = path
                if cold:
                    limit += 1
                    target += ("&" if "?" in path else "?") + "limit=%d" % limit
                t = time.perf_counter()
                get(s, target)
                if cold or i >= 50:
                    times.append(time.perf_counter() - t)
            times.sort()
            print("%d %-40s %s median %.1f us  p10 %.1f us" % (
                port, path[:40], "cold" if cold else "kept",
                statistics.median(times) * 1e6, times[len(times) // 10] * 1e6))
        s.close()


if __name__ == "__main__":
    main()
