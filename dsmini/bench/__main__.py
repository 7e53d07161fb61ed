"""`python -m dsmini.bench [--quick] [--corpus NAME|PATH ...] [--out DIR] [--sections a,b] [--threads N]`."""

import sys

from .cli import main

if __name__ == "__main__":  # spawned quality workers import this module too
    sys.exit(main())
