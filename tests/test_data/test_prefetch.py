"""prefetch_mode: cpu (BasicSR's PrefetchDataLoader) with flare_sr's stoppable generator: the same batches in the
same order, and a process that ends while the next batch is being loaded exits cleanly instead of aborting."""
import subprocess
import sys
import textwrap
import threading
import time

import torch
from basicsr.data.prefetch_dataloader import PrefetchDataLoader

from flare_sr import basicsr_fixes
from flare_sr.data.prefetch import StoppablePrefetchGenerator, stop_prefetch_threads
from tests.helpers import REPO, subprocess_env


class Numbers(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        return torch.full((2, ), float(index))


def test_apply_makes_basicsr_prefetch_loader_use_the_stoppable_generator_with_the_same_batches():
    basicsr_fixes.apply()
    loader = PrefetchDataLoader(num_prefetch_queue=1, dataset=Numbers(), batch_size=2)
    iterator = iter(loader)
    assert isinstance(iterator, StoppablePrefetchGenerator)
    assert [batch[:, 0].tolist() for batch in iterator] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    iterator.join(timeout=5)
    assert not iterator.is_alive()


def test_stop_ends_a_thread_waiting_for_room_and_one_still_loading():
    waiting = StoppablePrefetchGenerator(iter(range(100)), 1)  # fills its queue of 1, then waits to put the next
    started, release = threading.Event(), threading.Event()

    def slow():
        yield 'first'
        started.set()
        release.wait()
        yield 'second'
        yield 'third'

    loading = StoppablePrefetchGenerator(slow(), 1)
    assert next(loading) == 'first'
    assert started.wait(5)
    time.sleep(0.3)  # the waiting one now blocks on a full queue
    stopper = threading.Thread(target=stop_prefetch_threads)
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()  # stop waits for the batch being loaded ...
    release.set()
    stopper.join(timeout=5)
    assert not stopper.is_alive() and not waiting.is_alive() and not loading.is_alive()
    assert next(waiting) == 0  # ... and what was queued before the stop is still served
    assert loading.queue.empty()  # 'second' was loaded after the stop: dropped


# A process whose prefetch thread is inside torch operations (the next batch) when the main thread ends.
EXIT_WHILE_LOADING = textwrap.dedent('''
    import sys
    sys.path.insert(0, sys.argv[1])
    import torch
    from flare_sr import basicsr_fixes
    from basicsr.data.prefetch_dataloader import PrefetchDataLoader

    class Heavy(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, index):
            x, w = torch.rand(4, 3, 96, 96), torch.rand(8, 3, 3, 3)
            for _ in range(20 if index == 0 else 400):  # the first batch is quick, the next ones are not
                torch.nn.functional.conv2d(x, w)
            return torch.zeros(1)

    basicsr_fixes.apply()
    next(iter(PrefetchDataLoader(num_prefetch_queue=1, dataset=Heavy(), batch_size=1)))
    print('first batch')
''')


def test_a_process_ending_while_the_next_batch_loads_exits_cleanly():
    """BasicSR's daemon thread aborted such a process ('terminate called without an active exception', SIGABRT):
    what killed rank 1 of a 2-process torchrun now and then."""
    for _ in range(3):
        result = subprocess.run([sys.executable, '-c', EXIT_WHILE_LOADING, REPO], env=subprocess_env(),
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == 'first batch'
        assert 'terminate called' not in result.stderr
