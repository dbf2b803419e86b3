"""A minimal LSP client over a child process's stdio, shared by the scripts and tests that drive
`moat serve` from Python (scripts/simulate-feedback.py, tests/fill-body-eval/fill_body_eval.py,
editors/helix/test/replay.py). Python 3 standard library only.

Requests from the server are answered at once (`answer`, `null` unless a subclass says more);
notifications go to `on_notification` (a queue that `wait` reads, unless a subclass says more).
"""
from __future__ import annotations

import json
import queue
import subprocess
import threading
import time


class LspError(Exception):
    """A request failed or went unanswered."""


class LspClient:
    def __init__(self, cmd: list[str], stderr, env: dict | None = None):
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
        )
        self.next_id = 0
        self.responses: dict[int, queue.Queue] = {}
        self.notifications: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                continue
            msg = json.loads(out.read(length))
            if "id" in msg and "method" in msg:
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": self.answer(msg)})
            elif "id" in msg:
                with self.lock:
                    q = self.responses.get(msg["id"])
                if q:
                    q.put(msg)
            else:
                self.on_notification(msg)

    def answer(self, msg: dict):
        """The result for a request from the server."""
        return None

    def on_notification(self, msg: dict):
        self.notifications.put(msg)

    def _send(self, msg):
        body = json.dumps(msg).encode("utf-8")
        data = b"Content-Length: %d\r\n\r\n" % len(body) + body
        with self.lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def request_async(self, method: str, params) -> tuple[int, queue.Queue]:
        with self.lock:
            self.next_id += 1
            rid = self.next_id
            q: queue.Queue = queue.Queue()
            self.responses[rid] = q
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid, q

    def wait_response(self, rid: int, q: queue.Queue, timeout: float):
        try:
            msg = q.get(timeout=timeout)
        except queue.Empty:
            raise LspError(f"no answer to request {rid} within {timeout} s") from None
        finally:
            with self.lock:
                self.responses.pop(rid, None)
        if "error" in msg:
            raise LspError(f"request {rid} failed: {msg['error']}")
        return msg.get("result")

    def request(self, method: str, params, timeout: float = 120.0):
        rid, q = self.request_async(method, params)
        return self.wait_response(rid, q, timeout)

    def notify(self, method: str, params):
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait(self, method: str, timeout: float = 120.0):
        """The params of the next notification `method` (others before it are dropped)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                msg = self.notifications.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if msg.get("method") == method:
                return msg["params"]
        return None

    def close(self, timeout: float = 10.0):
        """`shutdown` and `exit`, or a kill; returns the exit status."""
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout=timeout)
                self.notify("exit", None)
                self.proc.wait(timeout=timeout)
        except Exception:  # noqa: BLE001
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self.proc.returncode
