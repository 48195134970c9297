"""The service layer: business logic that the dashboard, the API and the CLI all call.

What lives here: every change and every read that carries a rule of the business, with its
validation, its audit entry and its transaction, one module per subject:

- `membership` — the one path for membership changes (rows, events, audit) and rule refreshes;
- `segments`, `members`, `offers`, `rewards`, `overrides` — each subject's save, delete and
  reach; `offer_limits`, `offer_activity` (activations, fulfillments), `offer_usage`,
  `redemptions`; `uploads` (with `upload_parser`, which reads member-list files) — dry run,
  apply, undo;
- `webhooks` (subscriptions), `webhook_addresses` (which hosts a webhook may reach) and
  `webhook_delivery` (the signed, retried POSTs of events);
- `decisions` — which offers and rewards a member sees and why, from the database; `rules` —
  criteria as SQL in the database's dialect and the program's time zone; `stats`;
- `users`, `accounts` (reset links, two-factor sign-in), `tokens`, `lookup` (members and
  segments by any identifier), `locking`, `audit`;
- `errors` — :class:`ServiceError`, the one refusal every service raises: field -> message (the
  API's words) and, where they differ, the dashboard's words (`words_for`).

A new business rule goes in the service of its subject (a new subject: a new module here); the
view or API route that needs it parses input, calls it and renders what it returns.

What it may import: the pure core (`webapp.targeting`), the models and the shared plumbing
(`webapp.extensions`, `webapp.models`, `webapp.config`, `webapp.timeutil`, `webapp.passwords`,
`webapp.bulk`, `webapp.jobs`), and Flask's application (`current_app`, `has_app_context`) for
settings. Never a blueprint package (`webapp/<area>/`, `webapp/api/`), the web modules
(`webapp.access`, `webapp.htmx`, `webapp.templating`, `webapp.errors`, `webapp.sessions`,
`webapp.cli`), the request or templates: callers pass plain values in and get models, plain
values or an exception with a message back. `tests/test_layers.py` enforces this; the two
places that still reach into the request are listed there.
"""
