"""Gunicorn settings read by `gunicorn wsgi:app` from this folder (see README, Production).

Only process-level tuning lives here; workers, threads and the bind address stay on the
command line. After the fork, each worker moves everything the app built at start-up (the
imported modules, the app, its compiled templates) out of the garbage collector's view with
`gc.freeze()`, and collects the youngest generation less often: a request that decides 100
offers makes tens of thousands of short-lived objects, and with the default threshold (700)
the collector would walk them, and the long-lived start-up objects, many times per request.
"""

import gc


def post_fork(server, worker):
    """Tune the collector in each worker (the master keeps the defaults)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
