"""What to train next and what it concluded: the race on paired seeds, the confirmation round,
the schedule that reads both from the study, and the warnings when rounding decided."""
