"""The one exception type the CLI turns into a single clear error line, and that line's helper."""


class HepsnakeError(Exception):
    """A user-facing failure: bad input, bad config or a failed check.

    The message must name the file or key at fault and the cause; the CLI prints it
    as one line and exits non-zero.
    """

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause


def first_line(exc: BaseException) -> str:
    """The first line of an exception message, prefixed by its type, for one-line errors."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
