"""A config as JSON (nested dicts) flattened to {"section.field": value}: what run directories
and tuning studies compare."""


def flatten(tree, prefix=""):
    """Leaves of nested dicts under dotted keys; an empty dict has no leaves."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out
