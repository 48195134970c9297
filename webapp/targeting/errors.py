"""The exceptions the targeting core raises for definitions it refuses."""

from __future__ import annotations


class SegmentDefinitionError(ValueError):
    """A segment definition or criterion that does not follow SPEC §3; the message names it
    and `where` is the part it is about (`include`, `exclude[2]`; empty for the whole
    definition), so callers point at it without reading the message."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


class AudienceDefinitionError(ValueError):
    """An audience configuration that does not follow SPEC §2; the message names the problem
    (the API's words), `field` what it is about (`audience_type`, `configuration`,
    `configuration.<key>`) and `words` the same problem as the dashboard says it (no internal
    names such as in_all_segments; the message when it already reads so)."""

    def __init__(self, message: str, field: str = "configuration", words: str | None = None
                 ) -> None:
        super().__init__(message)
        self.field = field
        self.words = words or message
