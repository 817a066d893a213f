"""ROOT/xAOD → FTAG-layout HDF5 conversion."""
