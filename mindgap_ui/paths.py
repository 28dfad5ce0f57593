"""Where the dashboard finds its data (the embedded demo by default)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_ROOT = REPO_ROOT / "data" / "demo"
DEMO_MANIFEST = DEMO_ROOT / "manifest.parquet"
