"""Take-level fitting: one rigid object and one articulated hand over a whole reconstructed sequence."""
