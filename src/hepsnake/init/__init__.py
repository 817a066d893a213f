"""``hepsnake init``: inspect a real ROOT file and write a starter config and sample sheet."""
