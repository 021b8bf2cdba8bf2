"""Request tags (``x-interlock-tags``): labels a caller puts on a request for spend, logs and budgets."""

from __future__ import annotations

MAX_TAGS = 10
MAX_TAG_CHARS = 64


def parse_tags(header: str | None) -> tuple[str, ...]:
    """``x-interlock-tags: team-a, experiment=7`` → ("team-a", "experiment=7").

    At most ``MAX_TAGS`` distinct tags of ``MAX_TAG_CHARS`` characters each; ``*`` (which means
    "every tag" in a budget) is never a tag.
    """
    if not header:
        return ()
    tags: list[str] = []
    for part in header.split(","):
        tag = part.strip()[:MAX_TAG_CHARS]
        if tag and tag != "*" and tag not in tags:
            tags.append(tag)
            if len(tags) == MAX_TAGS:
                break
    return tuple(tags)
