"""The one schema of a stored search or comparison: every name effscale writes into Optuna's tables.

A search is one Optuna study whose user attributes hold its configuration (`CONFIG_ATTR`), its
candidates (`CANDIDATES_ATTR`) and their counts (`COUNTS_ATTR`); the driver that runs it is a
study system attribute (`DRIVER_ATTR`). A comparison is a study whose user attributes hold its
identity (`COMPARE_ATTR`) and, once finished, its result (`RESULT_ATTR`). Writers and readers
(the driver, the CLI's queries, the REST API) import these names; none spells them itself.
"""

from __future__ import annotations

CONFIG_ATTR = "effscale"
CANDIDATES_ATTR = "candidates"
COUNTS_ATTR = "counts"
DRIVER_ATTR = "effscale_driver"
COMPARE_ATTR = "effscale_compare"
RESULT_ATTR = "effscale_compare_result"
# A search's confirmation round (the top candidates retrained for longer) is a study of its own, so
# that the search's study holds one objective at one budget: Optuna's `best_trial` and
# optuna-dashboard's history then compare like with like. Its user attribute links it to the
# search: {"search": NAME, "budget": {"epochs": N} or {"steps": N}}. Searches stored before this
# kept their confirmation trials in their own study (user attribute "confirmation" true); readers
# take both.
CONFIRMATION_ATTR = "effscale_confirmation"
