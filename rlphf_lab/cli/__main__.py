"""`python -m rlphf_lab.cli ...`: the same as `rlphf-lab ...`."""
import sys

from . import main

sys.exit(main())
