"""``python -m bench``: the same as ``dllab bench``."""

import sys

from tui_lab.commands.bench import main

sys.exit(main())
