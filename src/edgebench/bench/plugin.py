"""edgebench's pytest plugin (pytest11 entry point): measurements as pytest-benchmark tests."""
