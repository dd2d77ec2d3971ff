"""Times promcore's label requests that are cold for a real reason: each one follows a scrape
that changed the shards' label names and `job` values (issue 6). Where small_requests.py's
COLD=1 only makes the router's kept whole answer miss, here the shards' published label
generation has moved, so the shards whose tables changed must be asked again.

It serves a target that brings NEW new series on every scrape, each with a label name and a
`job` value never seen before (`honor_labels`), starts BIN (2 shards, a fresh data directory
in a temporary directory) scraping it every second, and after each scrape's samples landed
times one `labels` and one `label/job/values` request over one kept-alive raw-socket
connection (small_requests.py's client). NEW=1 changes one shard per scrape; NEW=8 almost
always both. Prints the medians and, from promcore's /metrics, how many kept whole answers
and kept shard lists were given and how many lists the shards were asked for.

usage: BIN=target/release/promcore [NEW=1] [RUNS=30] [PROM_PORT=19391] python3 cold_after_change.py
"""

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from small_requests import connect, get  # noqa: E402

NEW = int(os.environ.get("NEW", "1"))
RUNS = int(os.environ.get("RUNS", "30"))
# A Prometheus to ask the same requests right after promcore, each time: it keeps no answers,
# so every request is cold for it, and the idle time before each is the same.
PROM_PORT = int(os.environ.get("PROM_PORT", "0"))
SCRAPES = [0]
SCRAPED = threading.Condition()


class Target(BaseHTTPRequestHandler):
    def do_GET(self):
        with SCRAPED:
            n = SCRAPES[0]
        lines = ["churn_total{job=\"c-%d-%d\",l_%d_%d=\"1\"} 1" % (n, i, n, i) for i in range(NEW)]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with SCRAPED:
            SCRAPES[0] += 1
            SCRAPED.notify_all()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port, name):
    s = connect(port)
    text = get(s, "/metrics").decode()
    s.close()
    m = re.search(r"^%s(?:\{\})? (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else float("nan")


def main():
    binary = os.environ.get("BIN", "target/release/promcore")
    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "promcore.yml")
        with open(config, "w") as f:
            f.write(
                "scrape_configs:\n"
                "  - job_name: churn\n"
                "    scrape_interval: 1s\n"
                "    honor_labels: true\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % target.server_address[1]
            )
        server = subprocess.Popen(
            [binary, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(tmp, "data"),
             "--shards=2", "--web.listen-address=127.0.0.1:%d" % port],
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.time() + 60
            while True:
                try:
                    s = connect(port)
                    break
                except OSError:
                    if time.time() > deadline or server.poll() is not None:
                        raise SystemExit("promcore did not start")
                    time.sleep(0.1)
            paths = ["/api/v1/labels", "/api/v1/label/job/values"]
            times = {p: [] for p in paths}
            prom = {p: [] for p in paths}
            ps = connect(PROM_PORT) if PROM_PORT else None
            names = ["promcore_label_answers_kept_hits_total", "promcore_label_lists_kept_hits_total",
                     "promcore_label_lists_kept_misses_total"]
            before = None
            for run in range(RUNS + 3):
                with SCRAPED:
                    seen = SCRAPES[0]
                    if not SCRAPED.wait_for(lambda: SCRAPES[0] > seen, timeout=10):
                        raise SystemExit("the target was not scraped")
                # The scrape's samples land on the shards well within this.
                time.sleep(0.2)
                if run == 3:
                    # The first scrapes only warm up; count from here.
                    before = [metric(port, n) for n in names]
                for p in paths:
                    t = time.perf_counter()
                    get(s, p)
                    if run >= 3:
                        times[p].append(time.perf_counter() - t)
                for p in paths if ps else []:
                    t = time.perf_counter()
                    get(ps, p)
                    if run >= 3:
                        prom[p].append(time.perf_counter() - t)
            after = [metric(port, n) for n in names]
            s.close()
        finally:
            server.kill()
            server.wait()
            target.shutdown()
    for p in paths:
        print("%-28s after a change: median %.1f us  p10 %.1f us  (%d requests, %d new series per scrape)"
              % (p, statistics.median(times[p]) * 1e6, sorted(times[p])[len(times[p]) // 10] * 1e6,
                 len(times[p]), NEW))
    delta = [a - b for a, b in zip(after, before)]
    # A build without the counters (before shard lists were kept) shows nan.
    print("kept whole answers given %s; shard lists kept %s, asked of the shards %s (of %d lists:"
          " %d requests x 2 shards)" % (delta[0], delta[1], delta[2], 4 * RUNS, 2 * RUNS))
    if PROM_PORT:
        for p in paths:
            print("%-28s Prometheus, same pattern: median %.1f us  p10 %.1f us"
                  % (p, statistics.median(prom[p]) * 1e6, sorted(prom[p])[len(prom[p]) // 10] * 1e6))


if __name__ == "__main__":
    main()
