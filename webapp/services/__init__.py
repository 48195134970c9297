"""The service layer: business logic that the dashboard, the API and the CLI all call.

What lives here: every change and every read that carries a rule of the business, with its
validation, its audit entry and its transaction, one module per subject:

- `membership` — the one path for membership changes (rows, events, audit) and rule refreshes;
- `segments`, `members`, `offers`, `rewards`, `overrides` — each subject's save, delete and
  reach; `uploads` (with `upload_parser`, which reads member-list files) — dry run, apply, undo;
- `webhooks` (subscriptions) and `webhook_delivery` (the signed, retried POSTs of events);
- `decisions` — which offers and rewards a member sees and why, from the database;
- `users`, `tokens`, `lookup` (members and segments by any identifier), `audit`.

What it may import: the pure core (`webapp.targeting`), the models and the shared plumbing
(`webapp.extensions`, `webapp.models`, `webapp.config`, `webapp.timeutil`, `webapp.passwords`,
`webapp.bulk`, `webapp.jobs`), and Flask's application (`current_app`, `has_app_context`) for
settings. Never a blueprint package (`webapp/<area>/`, `webapp/api/`), the web modules
(`webapp.access`, `webapp.htmx`, `webapp.templating`, `webapp.errors`, `webapp.sessions`,
`webapp.cli`), the request or templates: callers pass plain values in and get models, plain
values or an exception with a message back. `tests/test_layers.py` enforces this; the two
places that still reach into the request are listed there.
"""
