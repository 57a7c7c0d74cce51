"""The one schema of a stored search or comparison: every name effscale writes into Optuna's tables.

A search is one Optuna study whose user attributes hold its configuration (`CONFIG_ATTR`), its
candidates (`CANDIDATES_ATTR`) and their counts (`COUNTS_ATTR`); the driver that runs it is a
study system attribute (`DRIVER_ATTR`). A comparison is a study whose user attributes hold its
identity (`COMPARE_ATTR`) and, once finished, its result (`RESULT_ATTR`). A search's confirmation
round is a study of its own, linked to the search by `CONFIRMATION_STUDY_ATTR`.

Every trial is a plain Optuna trial whose user attributes say which network it trained and how
(the ``*_ATTR`` names below), and, for a FAIL, why (`FAIL_REASON_ATTR`) and what that means for a
resumed run (`FAIL_KIND_ATTR`, one of `FAIL_KINDS`). Writers and readers (the driver, the
recorder, the schedules, the CLI's queries, the REST API) import these names; none spells them
itself, and the stored strings never change (optuna-dashboard and older databases read them).
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# a trial's user attributes

# The network, written when the trial is created: a search's candidate
# (`effscale.search.records.study.static_attrs`) or a comparison's arm.
DEPTH_ATTR = "depth"
WIDTH_ATTR = "width"
RESOLUTION_ATTR = "resolution"
FLOPS_ATTR = "flops"
PARAMS_ATTR = "params"
FLOPS_RATIO_ATTR = "flops_ratio"  # measured FLOPs / the baseline's
FORMULA_RATIO_ATTR = "formula_ratio"  # d * w^2 * r^2, what the coefficients promise
ACTIVATIONS_ATTR = "activations"  # fvcore's activation count (`effscale.models.cost.ACTIVATIONS_CONVENTION`)
ACTIVATIONS_RATIO_ATTR = "activations_ratio"  # measured activations / the baseline's
LATENCY_MS_ATTR = "latency_ms"  # median forward pass, when the search is timed (`effscale.models.latency`)
LATENCY_RATIO_ATTR = "latency_ratio"
ARCH_ID_ATTR = "arch_id"  # the built network's identity: aliases share it
ALIASES_ATTR = "aliases"  # the (alpha, beta, gamma) grid points that build the same network
REPRESENTATIVE_RULE_ATTR = "representative_rule"
ARM_ATTR = "arm"  # a comparison's arm ("compound", "depth", ...)
PHI_ATTR = "phi"  # a comparison's phi
RATIO_ATTR = "ratio"  # a comparison arm's multiplier
LABEL_ATTR = "label"  # how the progress view names the network

# The run, written when the trial is created.
REPEAT_ATTR = "repeat"  # the repeat's index: paired seeds share it across networks
SEED_ATTR = "seed"
CONFIRMATION_ATTR = "confirmation"  # True: the confirmation round, at its longer budget
BUDGET_ATTR = "budget"  # {"epochs": N} or {"steps": N}
BATCH_SIZE_ATTR = "batch_size"
LR_ATTR = "lr"

# Where the worker ran it, and what it measured (`effscale.search.execution.recording`).
NODE_ATTR = "node"
DEVICE_ATTR = "device"
WORKER_STARTED_ATTR = "worker_started"
WORKER_FINISHED_ATTR = "worker_finished"
VAL_TOP1_ATTR = "val_top1"
VAL_LOSS_ATTR = "val_loss"
EPOCHS_ATTR = "epochs"
TRAIN_SECONDS_ATTR = "train_seconds"
IMAGES_PER_S_ATTR = "images_per_s"
HISTORY_ATTR = "history"  # one dict per epoch

# Why a trial FAILed: a one-line reason, and its kind.
FAIL_REASON_ATTR = "fail_reason"
FAIL_KIND_ATTR = "fail_kind"

# ---------------------------------------------------------------------------------------------
# fail kinds: what a FAIL means for a resumed search or comparison

FAIL_ERROR = "error"  # the training itself failed (out of memory, a diverged loss, an exception): final
FAIL_WORKER = "worker"  # a worker died, also after Ray's retries: trained again
FAIL_INTERRUPTED = "interrupted"  # a signal, a cancel, a database outage, a dead driver: trained again
FAIL_KINDS = (FAIL_ERROR, FAIL_WORKER, FAIL_INTERRUPTED)
FINAL_FAIL_KINDS = frozenset({FAIL_ERROR})  # never trained again, like PRUNED

# ---------------------------------------------------------------------------------------------
# a trial's system attributes

REAPED_ATTR = "effscale_reaped"  # True: failed by `reap_orphans` (its driver had died)
FIXED_PARAMS_ATTR = "fixed_params"  # Optuna's own: an enqueued (WAITING) trial's point

# ---------------------------------------------------------------------------------------------
# a study's attributes

CONFIG_ATTR = "effscale"
CANDIDATES_ATTR = "candidates"
COUNTS_ATTR = "counts"
DRIVER_ATTR = "effscale_driver"
COMPARE_ATTR = "effscale_compare"
RESULT_ATTR = "effscale_compare_result"
# A search's confirmation round (the top candidates retrained for longer) is a study of its own, so
# that the search's study holds one objective at one budget: Optuna's `best_trial` and
# optuna-dashboard's history then compare like with like. This study user attribute links it to
# the search: {"search": NAME, "budget": {"epochs": N} or {"steps": N}}; its status is the
# search's. (Not to be confused with the trial attribute `CONFIRMATION_ATTR`, which every
# confirmation trial still carries.) Searches stored before this kept their confirmation trials in
# their own study (trial attribute `CONFIRMATION_ATTR` true); readers take both.
CONFIRMATION_STUDY_ATTR = "effscale_confirmation"
# A drawing sampler's proposals (`effscale.search.planning.sampling`) are their own study, linked to
# their search by this user attribute: {"search": NAME, "sampler": ...}.
PROPOSALS_STUDY_ATTR = "effscale_proposals"
# A frontier (`effscale frontier`) is a multi-objective study; its identity is this user attribute
# (and its status row's config, as a comparison's is COMPARE_ATTR).
FRONTIER_ATTR = "effscale_frontier"
FRONTIER_RESULT_ATTR = "effscale_frontier_result"
FRONTIER_POINT_ATTR = "frontier_point"  # a frontier trial's point (`effscale.search.frontier.points.Point`)
