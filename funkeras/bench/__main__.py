"""`python -m funkeras.bench`: see `funkeras.bench.cli`."""

import sys

from funkeras.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
