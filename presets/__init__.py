"""dllab presets: one TOML file per technique (data only, never code)."""
