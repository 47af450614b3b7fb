import os
import tempfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"

# Tests never touch the network: the HF hub client must answer from the local cache or fail.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
# weight hashes are cached between runs (vitbench.weights.sha_cache_file): never in the user's ~/.cache
os.environ.setdefault("VITBENCH_CACHE", tempfile.mkdtemp(prefix="vitbench-cache-"))


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def golden() -> Path:
    return GOLDEN
