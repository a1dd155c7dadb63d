"""Real third-party API services from PyPI, run on 127.0.0.1 for the contract gate's fidelity tests.

Nobody here wrote their API documents: each one is served by the application itself.

| app | package | document |
| --- | --- | --- |
| `httpbin` | httpbin (Flask + flasgger) | Swagger 2.0 at `/spec.json`, non-standard fields under `info.contact` |
| `fab` | Flask-AppBuilder (its security REST API) | OpenAPI 3.0.2 at `/api/v1/_openapi`, behind its JWT login |
| `piccolo` | piccolo-admin (its demo app, FastAPI) | OpenAPI 3.1.0 at `/public/openapi.json` |

The apps live in their own environment, `.venv-apps` (`make apps` installs
`tests/contract/apps/requirements.txt`; `FIDELITY_APPS_PYTHON` names another interpreter):
httpbin needs greenlet<3, the browser tests greenlet>=3. `AppProcess` starts one with that
interpreter (`python tests/contract/apps/serve.py NAME PORT DIR`), waits until its document
answers, and stops it by its PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from examples.support_desk.launcher import free_port

ROOT = Path(__file__).resolve().parents[3]
SERVE = Path(__file__).resolve().parent / "serve.py"


def apps_python() -> Path:
    """The interpreter of the apps' own environment; a readable error when it is missing."""
    named = os.environ.get("FIDELITY_APPS_PYTHON")
    python = Path(named) if named else ROOT / ".venv-apps" / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"{python} is missing: `make apps` installs the fidelity apps into .venv-apps "
            "(or set FIDELITY_APPS_PYTHON to an interpreter that has them)"
        )
    return python


@dataclass(frozen=True)
class App:
    name: str
    #: Where the application serves its API document, relative to its base URL.
    document: str
    #: The document's kind, as the fidelity tests name it.
    kind: str
    #: Statuses of the document's URL that mean the app is up (401: it wants a login first).
    ready: tuple[int, ...] = (200,)


APPS = {
    "httpbin": App("httpbin", "/spec.json", "Swagger 2.0"),
    "fab": App("fab", "/api/v1/_openapi", "OpenAPI 3.0", ready=(200, 401)),
    "piccolo": App("piccolo", "/public/openapi.json", "OpenAPI 3.1"),
}


class AppProcess:
    def __init__(self, name: str, directory: Path, *, startup_timeout: float = 60.0) -> None:
        self.app = APPS[name]
        self.directory = directory
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def document_url(self) -> str:
        return self.url + self.app.document

    def login(self) -> str:
        """Flask-AppBuilder: a JWT access token for the seeded administrator."""
        from tests.contract.apps.serve import FAB_USER

        username, password = FAB_USER
        response = httpx.post(
            f"{self.url}/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db"},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def start(self) -> AppProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(apps_python()),
                str(SERVE),
                self.app.name,
                str(self.port),
                str(self.directory),
            ],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    raise RuntimeError(
                        f"{self.app.name} exited with code {code} before serving its document:\n"
                        f"{self.output_tail()}"
                    )
                try:
                    if client.get(self.document_url).status_code in self.app.ready:
                        return
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                time.sleep(0.1)
        raise TimeoutError(
            f"{self.app.name} on {self.url} not ready after {self.startup_timeout}s ({last})"
        )

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def output_tail(self, lines: int = 30) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
