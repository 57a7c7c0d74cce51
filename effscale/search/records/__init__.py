"""How a search is stored and read: the one schema of a stored study (`schema`: attribute names
and fail kinds; `status`: its status), the study and its trials in Optuna's tables (`study`,
`trials`: the one way a trial is failed), Optuna below its public API (`optuna_access`, the only
module that touches its privates), the driver's liveness, and the read-only queries the CLI, the
REST API and the dashboard share."""
