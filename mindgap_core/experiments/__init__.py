"""Evaluation experiments: a YAML spec (test domains × models × metrics) run into a results store."""
