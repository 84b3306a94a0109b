"""``python -m ytrec_lib``: see :mod:`ytrec_lib.course.cli`."""

import sys

from ytrec_lib.course.cli import main

sys.exit(main())
