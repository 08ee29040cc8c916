"""A gate in rudder-sdk-python's upload path: the upload thread waits inside its HTTP post until the test opens it."""

from __future__ import annotations

import threading

import pytest
import rudderstack.analytics.consumer as consumer


class UploadGate:
    """While closed, every upload attempt blocks (``entered`` is set) before anything is sent.

    A hang guard opens it after ``give_up_s`` if the test never does: code that (wrongly) waited for an
    upload on the event loop would otherwise deadlock the test instead of failing its ``not is_open``.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, give_up_s: float = 60.0) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()
        self._guard = threading.Timer(give_up_s, self._open.set)
        self._guard.daemon = True
        self._guard.start()
        real_post = consumer.post

        def post(*args, **kwargs):
            self.entered.set()
            self._open.wait()
            return real_post(*args, **kwargs)

        monkeypatch.setattr(consumer, "post", post)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        self._guard.cancel()
        self._open.set()
