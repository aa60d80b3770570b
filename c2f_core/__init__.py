"""c2f: hand and object meshes from RGB-D frames (C2F-SDF)."""

__version__ = "0.1.0"
