"""Browser fixtures for tests/segments/test_browser.py, shared from tests/browser/conftest.py."""

from tests.browser.conftest import (  # noqa: F401
    _playwright,
    live_server,
    login_as,
    page,
    pytest_runtest_makereport,
)
