"""The apps of the API processes of `serve --processes N`, which end with their supervisor:
one killed outright (SIGKILL) cannot stop them itself, and they would go on serving its port
unsupervised, never replaced nor stopped."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from starlette.applications import Starlette

from bulkops.api.app import create_app

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _end_with_supervisor() -> None:
    """SIGTERM (a graceful stop) for this process once its parent has gone (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    supervisor = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # gone before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def app_with_worker() -> Starlette:
    _end_with_supervisor()
    return create_app(run_worker=True, own_process=True)


def api_only() -> Starlette:
    _end_with_supervisor()
    return create_app(run_worker=False, own_process=True)
