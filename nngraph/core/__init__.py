"""The core every compiler stage shares: tensor types and dims, the graph IR, the one node emitter."""
