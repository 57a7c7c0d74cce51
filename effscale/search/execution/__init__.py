"""How trials run: Ray (local or a cluster), the one objective every trial trains with, the Ray
Tune runner and its recorder, signals and interruption, progress lines and logs."""
