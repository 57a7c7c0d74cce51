"""What a search decides before anything is started or written: its options, the (α, β, γ) grid
and constraint, the candidates measured and grouped by network, the resources each trial needs
and the time it all takes, and the ways out of a degenerate regime."""
