"""Fusions as rules: a pattern, a check that says why a match does not apply, a rewrite.
One rule per module; each makes only default-domain ONNX operators."""
