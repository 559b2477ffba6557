"""The dllab command line (placeholder until the CLI lands)."""
def main() -> int:
    raise SystemExit("dllab: command line not built yet")
