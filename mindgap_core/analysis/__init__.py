"""Gap statistics over a results store: paired gaps with bootstrap CIs and Wilcoxon tests, the
train-domain × test-domain matrix, breakdowns by tile condition, and diversity-scaling curves."""
