"""Developer tools: not imported by the runtime, only by tests, benchmarks and
``negotiate dev``."""
