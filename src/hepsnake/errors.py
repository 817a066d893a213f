"""The one exception type the CLI turns into a single clear error line."""


class HepsnakeError(Exception):
    """A user-facing failure: bad input, bad config or a failed check.

    The message must name the file or key at fault and the cause; the CLI prints it
    as one line and exits non-zero.
    """

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause
