"""Sample keys that make every random crop, flip and flare a pure function of the draw.

BasicSR re-seeds its workers identically every epoch and resumes at the start of an epoch, so
neither augmentations nor the data order survive a restart. Our sampler yields *keys*:
``key = draw * len(dataset) + index`` where ``draw`` counts samples over the whole run. A dataset
takes ``index = key % len(dataset)`` and draws its randomness from ``sample_rng``; a resumed run
that skips the consumed draws then sees exactly the samples the uninterrupted run would have seen.
"""
import numpy as np
import torch
from basicsr.data.data_sampler import EnlargedSampler


def sample_rng(dataset_opt, key, dataset_len):
    """The generator for one sample: fixed by (seed, key) for sampler keys, fresh for plain indices."""
    if key >= dataset_len:
        return np.random.default_rng([int(dataset_opt.get('seed', 0)), int(key)])
    return np.random.default_rng(np.random.randint(0, 2**31 - 1))


class ResumableSampler(EnlargedSampler):
    """EnlargedSampler that yields sample keys and can start part-way through an epoch."""

    def __init__(self, dataset, num_replicas, rank, ratio=1):
        super().__init__(dataset, num_replicas, rank, ratio)
        self.skip = 0

    def skip_next(self, num_samples):
        """Skip the first ``num_samples`` of the next epoch this rank iterates (the part already trained on)."""
        self.skip = num_samples

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.epoch)
        positions = torch.randperm(self.total_size, generator=generator).tolist()
        dataset_size = len(self.dataset)
        draw_base = (self.epoch + 1) * self.total_size  # never 0: keys stay >= dataset_size
        keys = [(draw_base + slot) * dataset_size + position % dataset_size
                for slot, position in enumerate(positions)]
        keys = keys[self.rank:self.total_size:self.num_replicas][self.skip:]
        self.skip = 0
        return iter(keys)

    def __len__(self):
        return self.num_samples
