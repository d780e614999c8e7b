"""The routing table: routes.toml loaded, checked line by line, and saved without loss."""
