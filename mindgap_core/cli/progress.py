"""tqdm progress bars driven through the core's ``on_progress(done, total)`` callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mindgap_core.types import ProgressFn

#: seconds before a bar shows: a command that fails within them (bad input) prints its one error line
#: alone (tests/mindgap_core/cli/test_cli_errors.py); longer work shows its progress
BAR_DELAY_S = 1.0


@contextlib.contextmanager
def tqdm_progress(desc: str) -> Iterator[ProgressFn]:
    """Yield an ``on_progress`` callback that moves a tqdm bar on stderr (shown after
    :data:`BAR_DELAY_S`)."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="item", dynamic_ncols=True, delay=BAR_DELAY_S)

    def on_progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)  # update (not refresh) keeps the bar hidden for its first BAR_DELAY_S

    try:
        yield on_progress
    finally:
        bar.close()
