import pytest

from tests.helpers import end_session


@pytest.fixture
def fresh_session():
    """No run left over from another test's session, and none left to the next."""
    end_session()
    yield
    end_session()
