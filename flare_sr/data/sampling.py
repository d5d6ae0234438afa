"""Sample keys that make every random crop, flip and flare a pure function of the draw.

BasicSR re-seeds its workers identically every epoch and resumes at the start of an epoch, so
neither augmentations nor the data order survive a restart. Our sampler yields :class:`SampleKey`
``(index, draw)``: the dataset item and the sample's position in the whole run. A dataset reads item
``index`` and draws its randomness from ``sample_rng(opt, key, len(dataset))``, fixed by (seed, key); a
resumed run that skips the consumed draws then sees exactly the samples the uninterrupted run would
have seen. A plain integer (BasicSR's own samplers, ``dataset[i]`` by hand) is item ``i % len`` with fresh
randomness.
"""
from dataclasses import dataclass

import numpy as np
import torch
from basicsr.data.data_sampler import EnlargedSampler


@dataclass(frozen=True)
class SampleKey:
    """One training sample: dataset item ``index`` (0 <= index < len(dataset)) at ``draw``, the sample's position
    (>= 0) in the run's sequence of all epochs. Equal keys give equal samples."""
    index: int
    draw: int

    def __post_init__(self):
        if self.index < 0 or self.draw < 0:
            raise ValueError(f'SampleKey: index and draw must be >= 0, got {self.index} and {self.draw}')


def item_index(key, dataset_len):
    """The dataset item of ``key``: a SampleKey's ``index`` (checked), or a plain integer modulo ``dataset_len``
    (BasicSR's EnlargedSampler counts past the end when ``dataset_enlarge_ratio`` > 1)."""
    if isinstance(key, SampleKey):
        if key.index >= dataset_len:
            raise IndexError(f'{key} is outside a dataset of {dataset_len} items')
        return key.index
    return int(key) % dataset_len


def sample_rng(dataset_opt, key, dataset_len):
    """The generator for one sample: fixed by (``seed``, key) for a SampleKey, fresh for a plain integer.

    The seed is ``[seed, draw * dataset_len + index]``, which is what earlier versions derived from their
    integer keys, so a run samples the same crops, flips and flares as before.
    """
    if isinstance(key, SampleKey):
        return np.random.default_rng([int(dataset_opt.get('seed', 0)), key.draw * dataset_len + key.index])
    return np.random.default_rng(np.random.randint(0, 2**31 - 1))


class ResumableSampler(EnlargedSampler):
    """EnlargedSampler that yields :class:`SampleKey`\\ s and can start part-way through an epoch."""

    def __init__(self, dataset, num_replicas, rank, ratio=1):
        super().__init__(dataset, num_replicas, rank, ratio)
        self.skip = None

    def skip_next(self, num_samples, epoch):
        """Skip the first ``num_samples`` of ``epoch`` on this rank (the part a resumed run already trained on), in
        every iteration of that epoch: with DataLoader workers, BasicSR's prefetcher starts an iterator, which
        draws its first batches at once, before the training loop sets the epoch and starts the one it trains on."""
        self.skip = (epoch, num_samples)

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.epoch)
        positions = torch.randperm(self.total_size, generator=generator).tolist()
        dataset_size = len(self.dataset)
        draw_base = (self.epoch + 1) * self.total_size  # from 1 epoch's worth: the seeds of earlier versions
        keys = [SampleKey(position % dataset_size, draw_base + slot) for slot, position in enumerate(positions)]
        skip = self.skip[1] if self.skip is not None and self.skip[0] == self.epoch else 0
        return iter(keys[self.rank:self.total_size:self.num_replicas][skip:])

    def __len__(self):
        return self.num_samples
