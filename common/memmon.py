"""superlance's memmon, quiet at shutdown: `python -m common.memmon -p name=96MB ...`.

supervisord.conf runs memmon as an event listener to restart a process over its RSS
budget. Plain memmon printed a traceback at every stop of the stack: while supervisord
stops its programs (seconds: each drains), a TICK_5 event still reaches memmon, whose
`getAllProcessInfo` then fails with the Fault SHUTDOWN_STATE, uncaught. Here that
answer means "nothing to check": the tick is acknowledged and memmon waits for the
next event or its SIGTERM. End of input (supervisord gone) and SIGTERM end it quietly.
Everything else is superlance's memmon unchanged (same arguments, same log lines).
"""

from __future__ import annotations

import os
import signal
import sys
import xmlrpc.client
from typing import IO, Any

from superlance import memmon
from supervisor import childutils
from supervisor.xmlrpc import Faults


class _Supervisor:
    """The `supervisor` namespace of the RPC proxy; no processes while shutting down."""

    def __init__(self, namespace: Any) -> None:
        self._namespace = namespace

    def getAllProcessInfo(self) -> list[dict[str, Any]]:  # noqa: N802 - supervisord's name
        try:
            infos: list[dict[str, Any]] = self._namespace.getAllProcessInfo()
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == Faults.SHUTDOWN_STATE:
                return []
            raise
        return infos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._namespace, name)


class _Rpc:
    def __init__(self, proxy: Any) -> None:
        self.supervisor = _Supervisor(proxy.supervisor)


class _Input:
    """stdin whose end (supervisord gone) exits instead of failing on an empty header."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def readline(self) -> str:
        line = self._stream.readline()
        if not line:
            raise SystemExit(0)
        return line

    def read(self, size: int) -> str:
        return self._stream.read(size)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    monitor = memmon.memmon_from_args(sys.argv[1:] if argv is None else argv)
    if monitor is memmon.help_request:
        memmon.usage(exitstatus=0)
    elif monitor is None:
        memmon.usage()
    monitor.stdin = _Input(sys.stdin)
    monitor.rpc = _Rpc(childutils.getRPCInterface(os.environ))
    monitor.runforever()


if __name__ == "__main__":
    main()
