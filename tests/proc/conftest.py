import pytest

from supervisor.proc.blocking import BlockingReader
from tests.proc.blockers import Blockers


@pytest.fixture
def blockers():
    """Start processes blocked on purpose; every one is killed with its group at teardown."""
    started = Blockers()
    yield started
    started.close()


@pytest.fixture
def reader():
    return BlockingReader()
