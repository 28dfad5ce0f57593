"""Gap statistics over a results store: paired gaps with CIs over spatial blocks (the independent units),
Holm-adjusted tests and verdicts, the excess gap over bicubic, error ratios, the train-domain × test-domain
matrix, breakdowns by tile condition, and diversity-scaling curves."""
