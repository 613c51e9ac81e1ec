"""Scripts on Keras' JAX backend, which needs a process of its own (the tests' Keras runs on
TensorFlow): one warm process per pytest process, as a worker keeps its trainer. Keras and JAX
are imported once (8 s on 2 cores) and traced programs are reused, where a process per script
paid for all of that again (test_vectorised's four scripts: 120 s in a process each, 52 s in
one). Each script runs in a namespace of its own, and Keras' session is cleared after it, as the
trainer clears it between trainings."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.helpers.runs import PROJECT_ROOT

MARKER = "jax-script:"  # the backends' native logs may reach stdout too: replies are the marked lines
SERVER = f"""
import contextlib, io, json, sys, traceback
for line in sys.stdin:
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(json.loads(line), "<script>", "exec"), {{"__name__": "__main__"}})
        reply = {{"printed": printed.getvalue()}}
    except Exception:
        reply = {{"error": traceback.format_exc()}}
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    print({MARKER!r} + json.dumps(reply), flush=True)
"""


class JaxProcess:
    """Runs scripts one at a time in a process with ``KERAS_BACKEND=jax``, started on first use
    and again after a script killed it; its stderr goes to ``stderr``."""

    def __init__(self, stderr: Path):
        self.stderr = stderr
        self.process: subprocess.Popen | None = None
        self.replies: queue.Queue[str | None] = queue.Queue()

    def run(self, script: str, timeout: float = 600) -> Any:
        """The last line ``script`` printed, read as JSON; its traceback, or the process's stderr
        if it died or ran past ``timeout``, as an AssertionError."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        logged = self.stderr.stat().st_size
        self.process.stdin.write(json.dumps(script) + "\n")
        self.process.stdin.flush()
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            line = None
        reply = json.loads(line) if line else {
            "error": f"the JAX process died, or gave no reply within {timeout} s:\n{self._stderr_since(logged)}"}
        assert "error" not in reply, reply["error"]
        return json.loads(reply["printed"].strip().splitlines()[-1])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _start(self) -> None:
        with self.stderr.open("a") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVER], cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
        self.replies = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout, self.replies), daemon=True).start()

    def _stderr_since(self, offset: int) -> str:
        with self.stderr.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")[-3000:]

    @staticmethod
    def _read(stdout, replies: queue.Queue) -> None:
        """Each reply in turn; None once the process has ended."""
        for line in stdout:
            if line.startswith(MARKER):
                replies.put(line[len(MARKER):])
        replies.put(None)
