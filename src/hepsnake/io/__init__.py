"""Reading ROOT/xAOD inputs and writing FTAG-layout HDF5."""
