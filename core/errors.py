"""The ground floor's one exception: a mistake in the user's input, shown as one line by every CLI."""
from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or flags: printed as one line by the CLI, no traceback."""
