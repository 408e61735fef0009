"""A real ``moto_server`` process on 127.0.0.1, for tests and scripts (no in-process patching)."""

from __future__ import annotations

import atexit
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["MotoServer", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (another process may take it before you bind it).

    Args:
        host: The address to probe. Default: ``127.0.0.1``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """``python -m moto.server`` in a subprocess, every service on one port; a context manager, or start()/stop().

    Example:
        ```python
        with MotoServer() as moto:
            boto3.client("acm", endpoint_url=moto.url, region_name="us-east-1")
        ```

    Args:
        host: The address the server listens on. Default: ``127.0.0.1``.
        startup_timeout: Seconds to wait for the server to answer HTTP before giving up. Default: 30.

    Attributes:
        host: The address the server listens on.
        port: The port it listens on once started (0 before).
        startup_timeout: Seconds `start` waits for it to answer.
    """

    _shared: MotoServer | None = None

    @classmethod
    def shared(cls) -> MotoServer:
        """One server per process, started on first use and stopped at exit: for session fixtures of many conftests."""
        if cls._shared is None or not cls._shared.running:
            cls._shared = cls().start()
        return cls._shared

    def __init__(self, host: str = "127.0.0.1", *, startup_timeout: float = 30.0) -> None:
        self.host = host
        self.port = 0
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._process is None:
            raise RuntimeError("MotoServer is not running: call start() or use it as a context manager")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> MotoServer:
        """Start the server on a free port and wait until it answers HTTP."""
        if self.running:
            return self
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probe and bind: try another
            self.port = free_port(self.host)
            self._log = tempfile.NamedTemporaryFile(prefix="moto-server-", suffix=".log")  # noqa: SIM115
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            env.pop("AWS_ENDPOINT_URL", None)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            )
            if self._wait_ready():
                atexit.register(self.stop)
                return self
            last_error = self._read_log()
            self.stop()
        raise RuntimeError(f"moto_server did not start on {self.host}: {last_error[-2000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/moto-api/")
                conn.getresponse().read()
                conn.close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        try:
            with open(self._log.name, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def reset(self) -> None:
        """Forget every resource in every service and region (``POST /moto-api/reset``)."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or self.host, parts.port or self.port, timeout=10)
        try:
            conn.request("POST", "/moto-api/reset")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"moto_server reset answered HTTP {response.status}")
        finally:
            conn.close()

    def stop(self) -> None:
        """Terminate the server (then kill it if it lingers) and remove its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        self.stop()
