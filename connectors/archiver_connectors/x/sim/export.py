"""Archives as X writes them, of every generation, from a made-up world: for tests, the
simulator's --write-export and benchmarks."""
