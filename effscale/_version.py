"""effscale's version: one place, below every package that reports it (cost cache keys, stored
configurations, the API, `effscale --version`). pyproject.toml reads it from here."""

__version__ = "0.1.0"
