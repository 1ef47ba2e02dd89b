"""The container action's entry point: run ``ci-deploy`` with the runner's INPUT_* variables."""

import sys

from ci_deploy.cli import main

if __name__ == "__main__":
    sys.exit(main())
