"""causalkit: causal analysis of visual recognition.

The formal core: causal graphs with node roles (:mod:`causalkit.graph`), structural
causal models (:mod:`causalkit.scm`), one vocabulary of interventions
(:mod:`causalkit.interventions`), backdoor-based bounds (:mod:`causalkit.bounds`), the
papers' graphs (:mod:`causalkit.library`), biased datasets as SCMs
(:mod:`causalkit.datasets`) and the command line (:mod:`causalkit.cli`).

This package imports no other package of the project; ``generators`` builds on it, and
``analysis`` and ``robust_training`` build on both.
"""

__version__ = "0.1.0"
