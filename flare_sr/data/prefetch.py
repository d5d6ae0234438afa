"""``prefetch_mode: cpu`` without the abort at exit.

BasicSR's ``PrefetchGenerator`` (``basicsr/data/prefetch_dataloader.py``) loads the next batch on a daemon thread
that nobody stops. A process that ends while that thread is inside a torch operation (the next batch's crops, flips,
synthetic flare) aborts: Python 3.11 ends daemon threads with ``pthread_exit`` when they next take the GIL, and the
unwind through torch's C++ frames is ``std::terminate`` ("terminate called without an active exception", exit status
134, SIGABRT). The usual victim is rank 1 of a torchrun, which leaves right after its last iteration while rank 0
validates and saves; in a loaded machine the fetch takes long enough to be caught.

:class:`StoppablePrefetchGenerator` is BasicSR's generator with a stop: at exit (``atexit``, which Python runs after
the main thread ends and before it ends daemon threads) every live one finishes the batch it is loading, drops it and
returns. ``basicsr_fixes.apply()`` installs it as the generator BasicSR's ``PrefetchDataLoader`` builds.
"""
import atexit
import queue
import threading
import weakref

from basicsr.data.prefetch_dataloader import PrefetchGenerator

_live = weakref.WeakSet()
_PUT_WAIT_S = 0.1  # how often a thread waiting for room in the queue looks at its stop flag


class StoppablePrefetchGenerator(PrefetchGenerator):
    """BasicSR's PrefetchGenerator (same queue, items and end-of-data ``None``) whose thread stops on :meth:`stop`."""

    def __init__(self, generator, num_prefetch_queue):
        self.stopped = threading.Event()
        _live.add(self)
        super().__init__(generator, num_prefetch_queue)  # starts the thread

    def run(self):
        for item in self.generator:
            if not self._put(item):
                return
        self._put(None)

    def _put(self, item):
        """Wait for room in the queue; False once stopped (the item is dropped)."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=_PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def stop(self):
        """Let the thread finish the batch it is loading, then end it; returns once it has ended."""
        self.stopped.set()
        if self.is_alive() and self is not threading.current_thread():
            self.join()


def stop_prefetch_threads():
    """Stop every live :class:`StoppablePrefetchGenerator` (registered with ``atexit`` on import)."""
    for generator in list(_live):
        generator.stop()


atexit.register(stop_prefetch_threads)
