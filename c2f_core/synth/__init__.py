"""Synthetic hand-object RGB-D takes with exact ground truth."""
