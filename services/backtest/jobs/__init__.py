"""Jobs: backtests run in worker processes, admitted against the memory budget, with
progress, cancellation and persisted results."""
