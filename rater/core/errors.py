"""The one error hierarchy: every user-facing failure carries a message and a hint naming the fix."""


class RaterError(Exception):
    """A failure the user can fix; the CLI shows `message` and `hint` and exits 2."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(RaterError):
    """A file or argument given by the user cannot be read or is malformed."""


class StoreError(RaterError):
    """The database cannot be opened, written or migrated."""


class SaveError(StoreError):
    """An item's ratings could not be saved; `reason` says why in plain words (what a teacher's screen shows)."""

    def __init__(self, item_id: int, reason: str, hint: str = "") -> None:
        if reason[1:2].islower():  # "The database ..." after a colon: "the database ..." (not "PostgreSQL")
            reason = reason[0].lower() + reason[1:]
        super().__init__(f"Could not save the ratings of item {item_id}: {reason}", hint)
        self.reason = reason


class UnknownPluginError(RaterError):
    """A rater or generator name is not installed."""


class FatalRaterError(RaterError):
    """A failure that ends the whole run (bad key, unknown model, unreachable server), not just one item."""


class ServerStopped(FatalRaterError):
    """A model server that answered before stopped answering (connections refused, reset or timing out in a row):
    the run stops instead of hammering a dead port, keeping everything it got."""


class StaleSave(RaterError):
    """A teacher's save based on what no longer holds: another window of the same teacher saved the item meanwhile.
    Nothing of it was written; `newer` holds the answer now stored ({distractor id: Judgement})."""

    def __init__(self, item_id: int, newer: dict) -> None:
        super().__init__(f"Another window saved item {item_id} while this one showed it.",
                         "look at the answer now stored, then save again or move on")
        self.item_id, self.newer = item_id, newer
