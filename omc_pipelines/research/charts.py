"""Charts for the UI: a matplotlib figure as a PNG inside markdown metadata.

Dagster's UI renders a markdown image with a ``data:`` URL inline on the asset's page, so a
chart needs no file server. matplotlib is imported only here, when a chart is drawn.
"""

from __future__ import annotations

import base64
import io


def figure(width: float = 8, height: float = 3.5):
    """A new figure and its axes, drawn off-screen (no display on a server)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def png_markdown(fig, alt: str) -> str:
    """The figure as markdown showing it inline: ``![alt](data:image/png;base64,...)``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')})"
