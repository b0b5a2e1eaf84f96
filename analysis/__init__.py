"""Analyses built on generators: the nuisance-label correlation probe
(:mod:`analysis.probes`) and the likelihood of real images under an intervention
strategy (:mod:`analysis.likelihood`), with their plots."""
