"""`make bench`: EdgeQuant's speed and memory figures beside a baseline from the same run."""
