"""Pieces the fakes of Meta's Graph APIs (Instagram, Facebook, Threads) share; see
``archiver_connectors.meta.sim.graph``. Not a simulator itself: no entry point."""
