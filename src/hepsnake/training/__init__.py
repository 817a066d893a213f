"""Lightning training: the module, callbacks and the ``train`` stage entry."""
