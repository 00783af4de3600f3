"""ARI access: the REST client and typed events."""
