"""python -m bwsim ... (the background process `bwsim up` starts)."""

import sys

from .cli import main

sys.exit(main())
