"""The C2F-SDF network: encoder, lifting, coarse SDF, 3D point-aligned features, heads."""
