"""Benchmark: many users at once. Time to the first chart for N concurrent sessions of a real
``streamlit run app.py`` server, through its websocket (no browser, no rendering).

Each session is what a browser tab does: open ``/_stcore/stream``, ask for a page (``page_name`` and
query string, as a first visit sends them) and read the server's messages until the first chart
element arrives (a plotly chart; for the map explorer, its Leaflet map component). The server is
started once; before the timed rounds, one session per page fills the shared caches (its time is
printed as "cold"). Then, per page, rounds of 1, 10 and 20 simultaneous new sessions, repeated; the
1-session time is the reference of the same run, so the ratio N-session median / 1-session median
shows what each added user costs; the server's CPU seconds per session (Linux /proc) show the same
without the noise of other work on the machine. The load average is printed: on a CPU shared with
other work the absolute times move, repeat the run.

Goal (issue 16): 10 sessions median <= 1.5 s and 20 sessions median <= 3 s, per page.

    python benchmarks/dashboard.py                            # overview and map explorer, 3 rounds
    python benchmarks/dashboard.py --pages overview --rounds 5
    python benchmarks/dashboard.py --synthetic-rows 100000    # overview of a 100k-row synthetic store
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mindgap_core.paths import DATA_ROOTS_ENV  # noqa: E402
from tests.fixtures.streamlit_server import serve_app  # noqa: E402

#: element types that count as "a chart" (the map explorer's map is a custom component)
CHART_ELEMENTS = {"plotly_chart", "component_instance", "bidi_component"}
GOALS_S = {10: 1.5, 20: 3.0}
SESSION_TIMEOUT_S = 300.0


async def first_chart_s(url: str, page: str, query: str) -> float:
    """Seconds from opening a session's websocket to the first chart element of ``page``."""
    start = time.perf_counter()
    stream = url.replace("http://", "ws://") + "/_stcore/stream"
    async with websockets.connect(stream, subprotocols=["streamlit"], max_size=None) as ws:
        request = BackMsg()
        request.rerun_script.page_name = page
        request.rerun_script.query_string = query
        await ws.send(request.SerializeToString())
        seen: list[str] = []
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(ws.recv(), SESSION_TIMEOUT_S))
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element.WhichOneof("type")
                if element == "exception":
                    raise RuntimeError(f"{page}: the page raised {msg.delta.new_element.exception.message}")
                if element in CHART_ELEMENTS:
                    return time.perf_counter() - start
                seen.append(element)
            elif kind == "script_finished":
                raise RuntimeError(f"{page}: the run finished without a chart (elements: {seen[-8:]})")


async def _sessions(url: str, page: str, query: str, n: int) -> list[float]:
    return list(await asyncio.gather(*(first_chart_s(url, page, query) for _ in range(n))))


def concurrent(url: str, page: str, query: str, n: int) -> list[float]:
    """First-chart times of ``n`` sessions opened at the same moment."""
    return asyncio.run(_sessions(url, page, query, n))


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of the process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def measure(url: str, pid: int, page: str, query: str, sizes: list[int], rounds: int
            ) -> tuple[dict[int, list[float]], dict[int, float]]:
    """Per session count, the first-chart times of every session of every round, and the server's CPU
    seconds per session (until every session of a round had its chart)."""
    times: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, float] = dict.fromkeys(sizes, 0.0)
    for _ in range(rounds):
        for n in sizes:
            before = cpu_s(pid)
            times[n] += concurrent(url, page, query, n)
            cpu[n] += (cpu_s(pid) - before) / (n * rounds)
    return times, cpu


def report(label: str, cold: float, times: dict[int, list[float]], cpu: dict[int, float]) -> bool:
    """Print one page's table; True when every goal is met."""
    base = statistics.median(times[1])
    print(f"\n{label}: first chart, cold caches (first session after start) {cold:.2f} s")
    print(f"{'sessions':>8} {'median (s)':>10} {'max (s)':>8} {'x 1 session':>11} "
          f"{'server CPU s/session':>21}  goal")
    ok = True
    for n, values in times.items():
        median = statistics.median(values)
        goal = GOALS_S.get(n)
        verdict = "" if goal is None else (f"<= {goal:.1f} s " + ("ok" if median <= goal else "SLOW"))
        ok &= goal is None or median <= goal
        print(f"{n:>8} {median:>10.2f} {max(values):>8.2f} {median / base:>11.1f} {cpu[n]:>21.3f}  {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", nargs="+", default=["overview", "map_explorer"])
    parser.add_argument("--sessions", nargs="+", type=int, default=[1, 10, 20])
    parser.add_argument("--rounds", type=int, default=3, help="repeats of each session count")
    parser.add_argument("--synthetic-rows", type=int, default=0,
                        help="also measure the overview of a synthetic store of this many rows")
    args = parser.parse_args()
    sizes = sorted(set([1, *args.sessions]))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [(page, page, "") for page in args.pages]
        if args.synthetic_rows:
            sys.path.insert(0, str(REPO / "benchmarks"))
            from store import build_store  # benchmarks/store.py

            n = build_store(tmp / "synthetic", args.synthetic_rows)
            cases.append((f"overview, synthetic store ({n:,} rows)", "overview",
                          urlencode({"results": str(tmp / "synthetic")})))
        print(f"load average (1/5/15 min) before: {_load()} on {os.cpu_count()} CPUs")
        ok = True
        with serve_app(tmp / "server.log", **{DATA_ROOTS_ENV: str(tmp)}) as (url, proc):
            pid = proc.pid
            colds = {label: concurrent(url, page, query, 1)[0] for label, page, query in cases}
            print(f"server memory after the cold sessions: {rss_mib(pid):.0f} MiB")
            for label, page, query in cases:
                ok &= report(label, colds[label], *measure(url, pid, page, query, sizes, args.rounds))
            print(f"\nserver memory at the end: {rss_mib(pid):.0f} MiB")
        print(f"\nload average after: {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
