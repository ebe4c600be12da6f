"""HTTP routes and wire schemas."""
