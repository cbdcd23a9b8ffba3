"""Benchmark every page of the web app under concurrent clients on the demo street.

Against a running server (``gridsvc serve`` or gunicorn) whose database holds the demo street
(``make demo``): each of ``--clients`` threads logs in once (its own session cookie) and then
fetches the pages in turn, ``--rounds`` times, over loopback. Baseline in the same run:
``/api/me`` (authentication and one scoped transaction, no data). Prints per page the p50 and
p95 latency in milliseconds over every request of the run, and the load average beside them
(the machine is shared: figures are noisy while others work).

Run: ``.venv/bin/python bench/pages.py --url http://127.0.0.1:5112 --user demo --password PW``
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import statistics
import threading
import time
import urllib.parse
import urllib.request

COMMUNITY = "530102001001"
PAGES = {
    "baseline /api/me": "/api/me",
    "home": "/",
    "map": f"/map?community={COMMUNITY}",
    "map frame (folium)": f"/map/frame?community={COMMUNITY}",
    "roster": f"/roster?community={COMMUNITY}",
    "blind spots": f"/blindspots?community={COMMUNITY}",
    "rebalance": "/rebalance",
    "record": f"/records/household/{COMMUNITY}H00010",
    "search": "/map?q=H0001",
    "overview": "/overview",
    "overview frame": "/overview/frame",
    "overview.geojson": "/api/overview.geojson",
    "audit": "/audit",
}


def session(base: str, user: str, password: str) -> urllib.request.OpenerDirector:
    """An opener holding a logged-in session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": user, "password": password, "csrf_token": token})
    opener.open(f"{base}/login", body.encode()).read()
    return opener


def client(base: str, opener, rounds: int, times: dict[str, list[float]], lock) -> None:
    for _ in range(rounds):
        for name, path in PAGES.items():
            started = time.perf_counter()
            with opener.open(base + path) as response:
                response.read()
                assert response.status == 200, (path, response.status)
            took = (time.perf_counter() - started) * 1000
            with lock:
                times[name].append(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5112")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    openers = [session(args.url, args.user, args.password) for _ in range(args.clients)]
    for opener in openers[:1]:  # warm every cache once (as after a data change)
        client(args.url, opener, 1, {k: [] for k in PAGES}, threading.Lock())
    times: dict[str, list[float]] = {k: [] for k in PAGES}
    lock = threading.Lock()
    load_before = os.getloadavg()[0]
    threads = [
        threading.Thread(target=client, args=(args.url, o, args.rounds, times, lock))
        for o in openers
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    print(f"{args.clients} clients x {args.rounds} rounds, {wall:.1f} s wall, "
          f"load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after")  # fmt: skip
    print(f"{'page':24} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in times.items():
        values.sort()
        p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        print(f"{name:24} {len(values):4d} {statistics.median(values):8.0f} {p95:8.0f}")


if __name__ == "__main__":
    main()
