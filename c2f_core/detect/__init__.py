"""Hand detection before reconstruction: landmarks on real images, the hand region in depth, the fallback detector."""
