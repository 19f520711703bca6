"""Labels beside points that cover neither one another nor the labelled markers: each label
takes the first of a few offsets around its point where its box overlaps no marker and no
label placed before it."""

from __future__ import annotations

from typing import Any

#: Where a label may sit, in points from its point: near it first, in eight directions, then
#: further out (with a leader line to its point).
OFFSETS = tuple((round(r * dx), round(r * dy))
                for r in (8, 20, 34, 50)
                for dx, dy in ((1, 0.4), (1, -1), (-1, 0.4), (-1, -1), (0, 1), (0, -1.4),
                               (1, 1), (-1, 1)))
NEAR = 8  # labels placed this close need no leader line


def place_labels(fig: Any, ax: Any, labels: list[Any], marker_pt: float = 12.0) -> int:
    """Move each matplotlib annotation in ``labels`` to the first offset where it covers no
    label placed before it (``labels`` in the order given) and no labelled point's marker
    (``marker_pt`` across); returns how many still overlap something (every offset taken)."""
    from matplotlib.transforms import Bbox

    fig.canvas.draw()  # the axes' limits are settled only when drawn
    renderer = fig.canvas.get_renderer()
    half = marker_pt / 2 * fig.dpi / 72
    placed: list[Any] = []
    for label in labels:
        x, y = ax.transData.transform(label.xy)
        placed.append(Bbox.from_extents(x - half, y - half, x + half, y + half))
    crowded = 0
    for label in labels:
        for dx, dy in OFFSETS:
            _move(label, dx, dy)
            box = _text_box(label, renderer).expanded(1.05, 1.2)
            if not any(box.overlaps(other) for other in placed) and _inside(ax, box, renderer):
                break
        else:
            crowded += 1
            _move(label, *OFFSETS[0])
            box = _text_box(label, renderer)
        placed.append(box)
    return crowded


def _move(label: Any, dx: int, dy: int) -> None:
    """Put ``label`` at ``(dx, dy)`` points from its point, on the side it lies on, with a
    leader line to it when it is not right beside it."""
    label.set_position((dx, dy))
    label.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
    label.set_verticalalignment("bottom" if dy > 0 else "top" if dy < 0 else "center")
    far = max(abs(dx), abs(dy)) > NEAR
    if label.arrow_patch is not None:
        label.arrow_patch.set_visible(far)


def text_boxes(fig: Any, labels: list[Any]) -> list[Any]:
    """Where each label's text is on ``fig``, in display units."""
    renderer = fig.canvas.get_renderer()
    return [_text_box(label, renderer) for label in labels]


def _text_box(label: Any, renderer: Any) -> Any:
    """The box of a label's text alone (an annotation's own box takes in its leader line)."""
    from matplotlib.text import Text

    return Text.get_window_extent(label, renderer)


def _inside(ax: Any, box: Any, renderer: Any) -> bool:
    area = ax.get_window_extent(renderer)
    return bool(area.x0 <= box.x0 and box.x1 <= area.x1 and area.y0 <= box.y0
                and box.y1 <= area.y1)
