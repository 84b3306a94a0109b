"""``python -m ytrec_lib``: see :mod:`ytrec_lib.cli`."""

import sys

from ytrec_lib.cli import main

sys.exit(main())
