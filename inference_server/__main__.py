"""`python -m inference_server serve ...` is `genfx-server serve ...`."""

import sys

from inference_server.cli import main

if __name__ == "__main__":
    sys.exit(main())
