"""The simulated youtube platform: a fake server faithful to ../shared/platforms, for tests and demos."""
