"""Built-in datasets by name."""
