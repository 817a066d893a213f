"""Tasks: each owns its label, head, loss, prediction fields, ONNX outputs and metrics."""
