"""``python -m tui.cli``: the same as the ``routedeck`` command."""

import sys

from tui.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
