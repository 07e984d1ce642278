"""Named crash points for the restart tests: with AIDEPLOY_FAILPOINT=<name> the process
dies (as a node failure would, no cleanup) when it reaches that point. Unset, they cost a
dictionary lookup. Used to prove that a crash between a record and its status neither
duplicates nor loses a record."""

from __future__ import annotations

import logging
import os

ENV = "AIDEPLOY_FAILPOINT"
EXIT_CODE = 86


def hit(name: str) -> None:
    if os.environ.get(ENV) == name:
        logging.getLogger(__name__).warning("failpoint %s reached: exiting", name)
        logging.shutdown()
        os._exit(EXIT_CODE)
