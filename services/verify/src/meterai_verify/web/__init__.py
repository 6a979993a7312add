"""The public verification web site and JSON API (``meterai serve web``)."""
