"""The store: table definitions, migrations and the only place that writes SQL."""
