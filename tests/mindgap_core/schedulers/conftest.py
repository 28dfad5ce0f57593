"""Tiny networks run fastest on one thread (and far faster than two when the CPU is shared)."""

from __future__ import annotations

from tests.fixtures.torch_threads import one_torch_thread  # noqa: F401  (autouse)
