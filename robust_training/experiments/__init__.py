"""Paper experiments as typed, nested configs, presets shipped as data, and pipelines."""
