"""The simulated instagram platform: a fake server faithful to ../shared/platforms, for tests and demos."""
