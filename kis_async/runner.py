"""The command line's event loop: Ctrl-C and SIGTERM stop the flow once, and the end is bounded.

``asyncio.run`` is not enough for a command whose promise is "interrupted: status 130, with what
was done so far". It turns the first SIGINT into a cancellation of its main task and any later
one into a ``KeyboardInterrupt`` raised wherever Python happens to be: in the ``finally`` that
records the results, halfway through printing them, inside its own shutdown. Its handler is a
plain Python one, so a SIGINT the kernel hands to a worker thread waits for the loop to wake up
for some other reason. And on its way out it waits without a bound for every task to finish
cancelling and for the worker threads (the token cache reads, writes and locks its file in
threads). A Ctrl-C could so be lost, cut the results short or leave the process idle for good.

:class:`Runner` replaces it for one run of the command:

- From :meth:`Runner.__enter__` to :meth:`Runner.__exit__`, SIGINT and SIGTERM never raise.
  The first one is kept in :attr:`Runner.received`; if :meth:`Runner.run`'s flow is still
  running, ``on_stop`` is told (in the loop) and the flow is cancelled, once. Later signals
  change nothing, so the flow's own clean-up is never cut short. A signal that comes while the
  results are printed is kept too; the results are printed whole. A signal ignored when the
  command started (SIGINT, for ``kis-async check ... &`` in a script) stays ignored.
- The handler only notes the signal and asks the loop to act (``call_soon_threadsafe``, as
  ``asyncio.Runner`` does). The signal wakeup fd is a socket the loop watches, so a signal the
  kernel delivered to any thread wakes the loop at once.
- The flow gets ``grace`` seconds to unwind after the signal, and is left behind after that.
  Every task still pending then is cancelled and waited for ``cleanup`` seconds at most, then
  the async generators, then the worker threads, none of it past that deadline. Whatever is left
  (a task that ignores cancellation, a thread stuck in a file system) makes
  :attr:`Runner.settled` false: the caller prints its results and ends the process with
  :meth:`Runner.exit_now`, since the interpreter would wait for that thread forever and a
  pending task would complain as it is collected.
- What tasks say about themselves once the flow is stopping ("Task was destroyed but it is
  pending", an exception nobody retrieved) is logged at DEBUG: it is the teardown, not news.
- After :meth:`Runner.__exit__` the two signals have their default action again, which kills
  the process with the signal itself: the results are out, and shells show that as 130 or 143.
  Never ``KeyboardInterrupt``, which would print a traceback on the way out. The signals are
  blocked while the handlers change: one the handler had not run for yet would otherwise be
  dropped, and the status with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE = 2.0
"""Seconds the flow has to unwind after a signal cancelled it."""
CLEANUP = 1.0
"""Seconds for every other task, the async generators and the worker threads after the flow."""


class Runner:
    """One flow on a loop of its own, stopped by SIGINT or SIGTERM (see the module notes).

    Use as ``with Runner(on_stop) as runner: runner.run(flow)``, printing the results inside the
    ``with``; then read :attr:`received`, and if :attr:`settled` is false, end with
    :meth:`exit_now`. ``on_stop(signum)`` runs in the loop, before the flow is cancelled.
    """

    def __init__(
        self,
        on_stop: Callable[[int], None],
        *,
        grace: float = GRACE,
        cleanup: float = CLEANUP,
    ) -> None:
        self.on_stop = on_stop
        self.grace = grace
        self.cleanup = cleanup
        self.received: int | None = None
        """The first SIGINT or SIGTERM since :meth:`__enter__`, if any."""
        self.settled = True
        """False once a task or a thread outlived the bounded wait (see :meth:`exit_now`)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop while :meth:`run` may hand it a signal; ``None`` otherwise."""
        self._flow: asyncio.Task[None] | None = None
        self._ended: asyncio.Future[None] | None = None
        self._installed: list[int] = []

    def __enter__(self) -> Runner:
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. SIGINT for `cmd &` in sh
                signal.signal(signum, self._note)
                self._installed.append(signum)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _held(self._installed):
            for signum in self._installed:
                signal.signal(signum, signal.SIG_DFL)
        self._installed.clear()

    def run(self, flow: Coroutine[Any, Any, None]) -> None:
        """Run ``flow`` until it ends, or ``grace`` seconds after a signal stopped it; then the
        bounded clean-up. Raises what the flow raised, except the cancellation a signal caused.
        """
        loop = asyncio.new_event_loop()
        flow_task = loop.create_task(flow)
        self._flow = flow_task
        self._ended = ended = loop.create_future()
        flow_task.add_done_callback(lambda _: _resolve(ended))
        try:
            with _waking(loop):
                self._loop = loop
                if self.received is not None:  # a signal came between __enter__ and here
                    loop.call_soon(self._stop, self.received)
                loop.run_until_complete(ended)
        finally:
            self._loop = None
            self.settled = self._wind_down(loop)
        if flow_task.done() and not (flow_task.cancelled() and self.received is not None):
            flow_task.result()

    def exit_now(self, status: int) -> None:
        """End the process with ``status`` without waiting for what was left behind."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: keep the first signal, and have the loop act on it."""
        if self.received is not None:
            return
        self.received = signum
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._stop, signum)

    def _stop(self, signum: int) -> None:
        """In the loop: tell ``on_stop``, cancel the flow, and stop waiting for it after
        ``grace`` seconds."""
        flow, ended, loop = self._flow, self._ended, asyncio.get_running_loop()
        if flow is None or ended is None or flow.done():
            return
        loop.set_exception_handler(_quietly)
        self.on_stop(signum)
        flow.cancel()
        loop.call_later(self.grace, _resolve, ended)

    def _wind_down(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Cancel the tasks left and wait ``cleanup`` seconds at most for them, the async
        generators and the worker threads; True if nothing is left. The loop is closed only
        when no task is left (one that is would complain on a closed loop); a thread that ends
        after it is closed drops its result quietly."""
        deadline = time.monotonic() + self.cleanup
        if self.received is not None:
            loop.set_exception_handler(_quietly)
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        left = _wait(loop, tasks, deadline)
        if not left:
            left = _wait(loop, {loop.create_task(loop.shutdown_asyncgens())}, deadline)
        if left:
            log.debug("left behind: %s", left)
            return False
        loop.close()  # also shuts the default executor down, without waiting for its threads
        threads = [t for t in threading.enumerate() if t is not threading.current_thread()]
        for thread in threads:
            if not thread.daemon:
                thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive() and not t.daemon]
        if stuck:
            log.debug("threads left running: %s", stuck)
        return not stuck


def _wait(
    loop: asyncio.AbstractEventLoop, tasks: set[asyncio.Task[Any]], deadline: float
) -> set[asyncio.Task[Any]]:
    """Run ``loop`` until ``tasks`` are done or ``deadline`` passes; the ones still pending."""
    if not tasks:
        return set()
    timeout = max(0.0, deadline - time.monotonic())
    _, pending = loop.run_until_complete(asyncio.wait(tasks, timeout=timeout))
    return pending


@contextlib.contextmanager
def _held(signals: list[int]) -> Iterator[None]:
    """``signals`` blocked for the main thread meanwhile: one that comes stays pending, and is
    delivered under whatever handler is in place once they are unblocked."""
    if not signals or not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


@contextlib.contextmanager
def _waking(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The signal wakeup fd on a socket ``loop`` watches: the kernel may hand a signal to any
    thread, and only the main thread runs the handler, so the loop must not sleep through it.
    Without readers on the loop (Windows' proactor, which sets its own), nothing to do."""
    wake, woken = socket.socketpair()
    try:
        for end in (wake, woken):
            end.setblocking(False)
        try:
            loop.add_reader(woken.fileno(), _drain, woken)
        except NotImplementedError:
            yield
            return
        previous = signal.set_wakeup_fd(wake.fileno(), warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous)
            loop.remove_reader(woken.fileno())
    finally:
        wake.close()
        woken.close()


def _resolve(ended: asyncio.Future[None]) -> None:
    """Stop :meth:`Runner.run` waiting: the flow ended, or its grace is over."""
    if not ended.done():
        ended.set_result(None)


def _drain(woken: socket.socket) -> None:
    """Empty the wakeup socket: it only wakes the loop, the handler has noted the signal."""
    with contextlib.suppress(OSError):
        while woken.recv(4096):
            pass


def _quietly(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler once the flow is stopping: at DEBUG, not on stderr."""
    log.debug("while stopping: %s", context.get("message"), exc_info=context.get("exception"))
