"""``python -m ivr.summary``: the summary worker (the same as ``ivr-summary-worker``)."""

import sys

from ivr.summary.worker import main

sys.exit(main())
