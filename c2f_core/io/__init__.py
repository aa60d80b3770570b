"""Takes, frames, intrinsics, mesh and USD writers (no torch)."""
