"""The sweep of tests/app/test_sweep.py: every page for every combination of the sidebar's choices,
and for malformed query strings. Functions here run in worker processes (one AppTest each)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from streamlit.testing.v1 import AppTest

from mindgap_core.paths import DEMO_RESULTS
from mindgap_core.store import ResultsStore, views
from mindgap_ui.choices import CHOICE_COLUMNS, KEY_COLUMNS, Combinations, offered
from mindgap_ui.state import ALL, SOURCE_DOMAIN
from tests.app.conftest import APP, page_file

#: sidebar choice -> its query parameter (the widget key is "sidebar_<parameter>")
PARAMS = {"run_id": "run", "metric": "metric", "method": "method", "regime": "regime", "target": "target",
          "band": "band", "aggregate": "aggregate"}
#: choices with an "(all)" entry
WITH_ALL = ("method", "regime")
View = dict[str, str | None]


def demo_combinations() -> Combinations:
    """What the sidebar offers on the demo store (computed the way mindgap_ui/results.py does)."""
    con = ResultsStore(DEMO_RESULTS).connect()
    try:
        keys = views.select_rows(con, columns=list(KEY_COLUMNS))
    finally:
        con.close()
    return offered(keys, SOURCE_DOMAIN)


def sidebar_views(combos: Combinations) -> list[View]:
    """Every sequence of choices the sidebar lets a user make, in its order (None = "(all)")."""

    def walk(level: int, chosen: View) -> Iterator[View]:
        if level == len(CHOICE_COLUMNS):
            yield dict(chosen)
            return
        column = CHOICE_COLUMNS[level]
        values: list[str | None] = list(combos.options(column, chosen))
        if column in WITH_ALL:
            values = [None, *values]
        for value in values or [None]:
            yield from walk(level + 1, {**chosen, column: value})

    return list(walk(0, {}))


def covering_views(views: list[View]) -> list[View]:
    """A subset of ``views`` in which every pair of choices that occurs together in some view occurs
    together at least once (a greedy all-pairs cover, in the walk's order). The crashes of issue 16 were
    pairs (metric + band, method + regime); every pair costs ~10 % of every combination here."""
    def pairs(view: View) -> set:
        return set(itertools.combinations(sorted(view.items()), 2))

    found = [pairs(v) for v in views]
    uncovered = set().union(*found)
    chosen: set[int] = set()
    while uncovered:
        best = max(range(len(views)), key=lambda i: len(found[i] & uncovered))
        chosen.add(best)
        uncovered -= found[best]
    return [views[i] for i in sorted(chosen)]


def _shown(at: AppTest) -> dict[str, str]:
    """The sidebar's selectboxes: query parameter -> shown value."""
    keys = {f"sidebar_{p}": p for p in PARAMS.values()}
    return {keys[w.key]: w.value for w in at.sidebar.selectbox if w.key in keys}


def _problems(at: AppTest, what: str) -> list[str]:
    return [f"{what}: {e.value}" for e in at.exception]


def sweep_views(page: str, chosen_views: list[View]) -> tuple[int, list[str]]:
    """Run ``page`` for each view, chosen through the sidebar's widgets as a user would, one widget and
    one run at a time in the sidebar's order (one session); returns (runs, problems): exceptions, and
    views the sidebar did not show as chosen. Consecutive views mostly differ in the last choice."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page(page_file(page)).run()
    runs, problems = 1, _problems(at, f"{page} first run")
    for view in chosen_views:
        wanted = {PARAMS[c]: (ALL if v is None else v) for c, v in view.items()}
        for param in PARAMS.values():
            shown = _shown(at)
            if param in shown and shown[param] != wanted[param]:
                at.sidebar.selectbox(key=f"sidebar_{param}").set_value(wanted[param])
                at.run()
                runs += 1
                problems += _problems(at, f"{page} {wanted} (choosing {param})")
        shown = _shown(at)
        if {p: v for p, v in wanted.items() if p in shown} != shown:
            problems.append(f"{page} {wanted}: the sidebar shows {shown}")
    return runs, problems


def sweep_queries(page: str, queries: list[Mapping[str, str | list[str]]]) -> tuple[int, list[str]]:
    """Open ``page`` with each query string in a new session; returns (runs, exceptions)."""
    problems: list[str] = []
    for query in queries:
        at = AppTest.from_file(APP, default_timeout=300)
        for key, value in query.items():
            at.query_params[key] = value
        at.switch_page(page_file(page)).run()
        problems += _problems(at, f"{page} ?{dict(query)}")
        if not at.title:
            problems.append(f"{page} ?{dict(query)}: no title, nothing explained")
    return len(queries), problems


def call(job: tuple) -> tuple[int, list[str]]:
    """``job[0](*job[1:])``: what a worker process runs."""
    function, *args = job
    return function(*args)
