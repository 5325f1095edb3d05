"""Graph -> graph optimizations: a pass takes a graph and returns it with whether it changed it."""
