"""`python -m dsmini`: the command line; dsmini/cli/main.py parses and dispatches."""

import sys

from dsmini.cli.main import entry

if __name__ == "__main__":
    sys.exit(entry())
