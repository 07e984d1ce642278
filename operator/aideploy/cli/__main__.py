"""`python -m aideploy.cli` runs the kubectl plugin."""

import sys

from aideploy.cli.main import main

sys.exit(main())
