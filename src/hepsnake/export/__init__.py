"""Export a trained tagger to ONNX (fp32 and int8), validate it and benchmark it on CPU."""
