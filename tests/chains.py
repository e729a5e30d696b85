"""Walking an exception's chain, for the tests that prove no secret rides along in it."""


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception reachable from it through ``__context__`` and ``__cause__``."""
    found, todo = [], [exc]
    while todo:
        current = todo.pop()
        if current is not None and current not in found:
            found.append(current)
            todo += [current.__context__, current.__cause__]
    return found
