"""``python -m theta_like_jobs``: write a batch job script for an ensemble (see cli.py)."""

import sys

from theta_like_jobs.cli import main

sys.exit(main())
