"""dsrflow."""
