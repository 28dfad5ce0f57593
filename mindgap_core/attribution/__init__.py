"""Attribute the domain gap to simulator effects (:mod:`.decompose`) on re-simulated test domains."""
