"""Handler modules as users write them, for the loading tests."""
