"""The container action's entry point: run ``ci-deploy`` with the runner's INPUT_* variables."""

import os
import sys

from ci_deploy.cli import main

if __name__ == "__main__":
    code = main()
    # Everything the run writes (outputs, summary, spool files) is closed by now: the exit
    # skips the interpreter's teardown, which frees every module one by one (about 75 ms).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
