"""The service layer: business logic that the dashboard, the API and the CLI call."""
