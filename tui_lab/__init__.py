"""The Textual lab and the dllab command line."""
