"""The fault catalogue (issue 10): real crawls against a hostile loopback server."""
