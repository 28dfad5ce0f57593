"""One band-alias table (mindgap_core/types.py): every reader that names bands maps them the same way."""

from __future__ import annotations

import pytest

from mindgap_core.data.pairs import _canonical_names
from mindgap_core.types import CANONICAL_BANDS, S2_TO_CANONICAL, canonical_band


@pytest.mark.parametrize(("given", "expected"), [
    ("B02", "blue"), ("b03", "green"), (" B04 ", "red"), ("B08", "nir"), ("NIR", "nir"), ("Red ", "red"),
    ("B8A", "b8a"), ("swir", "swir"),
])
def test_canonical_band(given: str, expected: str) -> None:
    assert canonical_band(given) == expected


def test_the_table_covers_exactly_the_canonical_bands() -> None:
    assert sorted(S2_TO_CANONICAL.values()) == sorted(CANONICAL_BANDS)


def test_pairs_reader_uses_the_table() -> None:
    assert _canonical_names(("B08", "B04", "B03", "B02")) == ("nir", "red", "green", "blue")
    assert _canonical_names(("B02", "B03", "B04")) is None  # not all four
