"""What runs several parts in order: the demo, the nightly, the `run` launcher."""
