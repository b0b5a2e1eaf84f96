"""Robust training: classifiers, objectives (a registry) and a seeded trainer."""
