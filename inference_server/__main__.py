"""`python -m inference_server ...` is `genfx serve ...`."""

import sys

from genfx.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
