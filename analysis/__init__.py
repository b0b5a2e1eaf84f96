"""Analyses built on generators: the nuisance-label correlation probe
(:mod:`analysis.probes`), the likelihood of real images under an intervention
strategy (:mod:`analysis.likelihood`), with their plots, and a classifier's accuracy
under do() on each nuisance (:mod:`analysis.sensitivity`)."""
