"""Names of the attribution test domains (no heavy imports: the dashboard reads them)."""

from __future__ import annotations

from collections.abc import Iterable
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

    kind: str  # "none" | "only" | "without" | "set"
    effect: str | None
    effects_on: tuple[str, ...]

    @property
    def domain(self) -> str:
        """Its test-domain name, e.g. ``attr-only-mtf``, ``attr-without-noise``, ``attr-set-mtf-noise``."""
        if self.kind == "set":
            return f"{VARIANT_DOMAIN_PREFIX}set-" + "-".join(self.effects_on)
        return f"{VARIANT_DOMAIN_PREFIX}{self.kind}" + (f"-{self.effect}" if self.effect else "")


#: the joint player of the effects that are on in the target but not attributed one by one
OTHER_EFFECTS = "other_effects"


@dataclass(frozen=True)
class Players:
    """The players of the attribution game: each attributed effect, plus :data:`OTHER_EFFECTS` (one joint
    player) when the target has effects on that are not attributed one by one. A coalition (a set of
    players) is the simulator with exactly their effects on; all players on is the target domain."""

    effects: tuple[str, ...]
    others: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.effects + ((OTHER_EFFECTS,) if self.others else ())

    def variant(self, on: Iterable[str]) -> Variant | None:
        """The variant of coalition ``on`` (None for every player: the target domain itself).

        Named ``none`` / ``only-<e>`` / ``without-<e>`` where one of those describes it (the domains of
        the single-effect and leave-one-out views), ``set-<effects>`` otherwise."""
        chosen = set(on)
        unknown = chosen - set(self.names)
        if unknown:
            raise ValueError(f"unknown players {sorted(unknown)}; players: {list(self.names)}")
        members = [p for p in self.names if p in chosen]
        if len(members) == len(self.names):
            return None
        effects_on = tuple(e for p in members for e in (self.others if p == OTHER_EFFECTS else (p,)))
        missing = [p for p in self.names if p not in chosen]
        if not members:
            return Variant("none", None, ())
        if len(members) == 1 and members[0] != OTHER_EFFECTS:
            return Variant("only", members[0], effects_on)
        if len(missing) == 1 and missing[0] != OTHER_EFFECTS:
            return Variant("without", missing[0], effects_on)
        return Variant("set", None, effects_on)

    def coalitions(self) -> list[frozenset[str]]:
        """Every coalition, smallest first (2^n of them, the empty one and the full one included)."""
        names = self.names
        return [frozenset(p for i, p in enumerate(names) if mask >> i & 1)
                for mask in sorted(range(1 << len(names)), key=lambda m: (bin(m).count("1"), m))]
