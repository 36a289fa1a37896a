"""What the service does, independent of HTTP: used by the API and the command line."""
