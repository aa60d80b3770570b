"""Reconstruction and contact metrics, evaluation protocols, reports."""
