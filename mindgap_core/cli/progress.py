"""tqdm progress bars driven through the core's ``on_progress(done, total)`` callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mindgap_core.types import ProgressFn


@contextlib.contextmanager
def tqdm_progress(desc: str) -> Iterator[ProgressFn]:
    """Yield an ``on_progress`` callback that moves a tqdm bar on stderr."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="item", dynamic_ncols=True)

    def on_progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield on_progress
    finally:
        bar.close()
