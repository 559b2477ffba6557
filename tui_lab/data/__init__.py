"""The app's data layer: plain Python that the screens and widgets draw from (no Textual here)."""
