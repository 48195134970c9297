"""The browser fixtures of tests/browser/, for this area's browser test."""

from tests.browser.conftest import (  # noqa: F401
    _playwright,
    live_server,
    login_as,
    page,
    pytest_runtest_makereport,
)
