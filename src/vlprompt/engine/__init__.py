"""The method-agnostic training and evaluation engine."""
