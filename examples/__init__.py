"""Worked examples of extensions, exercised by the test suite."""
