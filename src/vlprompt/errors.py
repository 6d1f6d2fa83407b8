"""User-facing errors.

Anything a user can cause (a bad flag, a missing folder, a corrupt file) raises :class:`VLPromptError`
with a one-line message that names the offending file or flag and says how to fix it. The CLI prints
``error: <message>`` and exits with status 2, without a traceback.
"""


class VLPromptError(Exception):
    """An error caused by user input; its message is shown to the user as one line."""
