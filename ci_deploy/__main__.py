"""``python -m ci_deploy``: the same as the ``ci-deploy`` command."""

import sys

from .cli import main

sys.exit(main())
