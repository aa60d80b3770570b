"""Crop finding, dense and surface-aware mesh extraction, the sequence runner."""
