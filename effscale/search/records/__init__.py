"""How a search is stored and read: the one schema of a stored study (attribute names, trial
states, status), the study and its trials in Optuna's tables, the driver's liveness, and the
read-only queries the CLI, the REST API and the dashboard share."""
