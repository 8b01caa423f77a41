"""The words every experiment figure carries: what was run (dataset, model, seeds) in its
title, and what its shaded band means."""

BAND = "band: 16th-84th percentile over seeds"


def title(results, what=""):
    """'<what> - <dataset>, <model>, seeds 0, 1, 2' from a results JSON's config."""
    config = results.get("config", {})
    dataset = config.get("data", {}).get("name", "?")
    model = config.get("model", {}).get("name", "?")
    seeds = results.get("seeds") or config.get("experiment", {}).get("seeds") or []
    run = f"{dataset}, {model}, seeds {', '.join(str(s) for s in seeds) or '?'}"
    return f"{what} - {run}" if what else run
