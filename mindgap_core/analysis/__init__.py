"""Gap statistics over a results store: paired gaps with CIs over spatial blocks (the independent units),
Holm-adjusted tests and verdicts, the excess gap over bicubic, error ratios, the train-domain × test-domain
matrix, breakdowns by tile condition, and diversity-scaling curves."""

#: confidence intervals offered (:mod:`mindgap_core.analysis.inference`); here, free of numpy, for the CLI's
#: argument parsers (``mindgap --help`` stays fast)
INTERVALS = ("t", "bootstrap")
#: the cluster bootstrap needs at least this many blocks (G = 4 has only 35 distinct resamples)
MIN_BOOTSTRAP_BLOCKS = 5
