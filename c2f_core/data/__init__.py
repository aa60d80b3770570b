"""Datasets (synthetic takes, DexYCB, ObMan), SDF sample preparation, augmentation."""
