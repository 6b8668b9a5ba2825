"""Scale runs for `make bench`: each module prints its figures (ratios and counts)."""
