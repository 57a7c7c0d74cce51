"""The comparison: compound scaling against depth-, width- and resolution-only arms matched in
measured cost, trained on paired seeds on the search's own engine."""
