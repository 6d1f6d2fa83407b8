"""Analyses of trained runs: Nemesis corruption experiments (:mod:`.corruption`) and norm/accuracy
plots (:mod:`.plots`). Submodules are imported on use (matplotlib is loaded only when plotting)."""
