"""``python -m bench``: the same as ``dllab bench``."""

import sys

from bench.command import main

if __name__ == "__main__":  # worker processes (spawn) import this module again: run only once
    sys.exit(main())
