"""Simulators: the fake-platform server they share, the registry of installed ones, the demo."""
