"""Names of the attribution test domains (no heavy imports: the dashboard reads them)."""

from __future__ import annotations

from dataclasses import dataclass

#: run ids of ``mindgap attribute`` runs start with this
RUN_PREFIX = "attribution-"
#: prefix of the simulated attribution-variant domains (``attr-none``, ``attr-only-mtf``, ...);
#: manifests accept rows of such domains (:func:`mindgap_core.data.manifest.known_domain`)
VARIANT_DOMAIN_PREFIX = "attr-"
#: readable names of the simulator's effects (CLI tables and dashboard; others are shown as their name)
EFFECT_LABELS = {
    "mtf": "MTF (optical blur)", "spectral": "spectral response", "radiometric": "radiometry & haze",
    "temporal": "temporal change", "misregistration": "misregistration", "noise": "noise & quantisation",
}


def effect_label(effect: str) -> str:
    """The display name of a simulator effect."""
    return EFFECT_LABELS.get(effect, effect)


@dataclass(frozen=True)
class Variant:
    """One attribution test domain: which effects are on."""

    kind: str  # "none" | "only" | "without"
    effect: str | None
    effects_on: tuple[str, ...]

    @property
    def domain(self) -> str:
        """Its test-domain name, e.g. ``attr-only-mtf``."""
        return f"{VARIANT_DOMAIN_PREFIX}{self.kind}" + (f"-{self.effect}" if self.effect else "")
