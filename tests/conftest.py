"""Settings for the whole test suite."""

import os

import torch

# One intra-op thread unless KAN_TEST_THREADS says otherwise: on small shared machines torch's
# default (one thread per core) oversubscribes the CPU and makes small fits many times slower.
torch.set_num_threads(int(os.environ.get("KAN_TEST_THREADS", "1")))
