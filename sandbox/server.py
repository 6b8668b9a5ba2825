"""Run the sandbox: in a background thread for tests and the demo, or in the foreground.

with SandboxServer(admin=True) as sandbox:   # a free loopback port, admin API on
    sandbox.url                           # http://127.0.0.1:PORT
    sandbox.state.add_shop(...)           # the same state the HTTP API serves
"""

import logging
import signal
import socket
import threading
import time
from pathlib import Path

import uvicorn

from sandbox.app import create_app
from sandbox.core.state import SandboxState

logger = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class SandboxServer:
    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        port: int = 0,
        admin: bool = False,
        state_file: Path | None = None,
    ) -> None:
        if state is None and state_file is not None and state_file.exists():
            state = SandboxState.load(state_file)
        self.state = state or SandboxState()
        self.state_file = state_file
        self.port = port or free_port()
        config = uvicorn.Config(
            create_app(self.state, admin=admin),
            host=LOOPBACK,
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="sandbox")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> "SandboxServer":
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the sandbox did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.state_file is not None:
            self.state.save(self.state_file)
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(port: int, state_file: Path | None, admin: bool = False) -> None:
    """Foreground server for `metasync sandbox`; state saved to `state_file` on exit."""
    server = SandboxServer(port=port, admin=admin, state_file=state_file)
    interrupt_on_terminate()
    server.start()
    logger.info("sandbox listening on %s (admin API %s)", server.url, "on" if admin else "off")
    try:
        while server._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def interrupt_on_terminate() -> None:
    """SIGTERM and SIGINT raise KeyboardInterrupt in this process. Set explicitly: a process
    started from a background shell or job runner inherits them ignored and never exits."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, interrupt)
