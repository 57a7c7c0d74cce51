"""How trials run: one engine session under a search and a comparison (`session`: Ray, the
database, the status row and heartbeat, stages of trials under signals and cancel), the one
objective every trial trains with, the Ray Tune runner and its recorder, progress lines and logs."""
