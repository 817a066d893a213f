"""The Markdown report a physicist reads."""
