"""The harness library: one theme per module (see docs/harness.md)."""
