"""Per-layer views of an export for its model card: matrices grouped by layer, and the plot.

:func:`group_by_layer` arranges per-matrix values (sparsity, kept rank) into a layer x matrix
grid, the shape of both the card's per-layer table and its plot. :func:`plot_sparsity_per_layer`
and :func:`plot_rank_per_layer` draw that grid as grouped bars into a PNG.

The plot uses matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``: no global
backend or figure registry is touched, so a card can be written from a training script, a
notebook or a worker thread without side effects or leaked figures. matplotlib is optional (the
``dev`` extra); without it the plot functions raise :class:`ImportError` with the ``pip`` command,
and :func:`hf_prune.cards.write_card` writes the card without the plot, saying so in the card.

Example:
    >>> import os, tempfile
    >>> split_layer("bert.encoder.layer.3.attention.self.query.weight")
    ('3', 'attention.self.query')
    >>> grid = group_by_layer({"encoder.layer.0.output.dense.weight": 0.5, "encoder.layer.1.output.dense.weight": 0.7})
    >>> grid.layers, grid.kinds, grid.cells[("1", "output.dense")]
    (['0', '1'], ['output.dense'], 0.7)
    >>> path = os.path.join(tempfile.mkdtemp(), "sparsity_per_layer.png")
    >>> plot_sparsity_per_layer({"encoder.layer.0.output.dense.weight": 0.5}, path, overall=0.5) == path
    True
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")

# The first ``.<number>.`` segment of a parameter name is its layer in the stack of transformer
# blocks (``bert.encoder.layer.3.``, ``distilbert.transformer.layer.3.``, ``encoder.layers.3.``);
# a later number (an expert index, say) belongs to the matrix's own name.
_LAYER = re.compile(r"^(?:(?P<stack>.*?)\.)?(?P<index>\d+)\.(?P<rest>.+)$")

PLOT_FILE_NAME = "sparsity_per_layer.png"


def split_layer(name: str) -> tuple[str | None, str]:
    """``(layer index, matrix kind)`` of a parameter or module name; ``(None, name)`` outside layers.

    A trailing ``.weight`` is dropped, so module names and weight names give the same kind.

    Example:
        >>> split_layer("bert.embeddings.word_embeddings.weight")
        (None, 'bert.embeddings.word_embeddings')
    """
    name = name.removesuffix(".weight")
    match = _LAYER.match(name)
    if match is None:
        return None, name
    return match["index"], match["rest"]


@dataclass
class LayerGrid(Generic[Value]):
    """Per-matrix values laid out as layers (rows) x matrix kinds (columns).

    ``cells`` maps ``(layer, kind)`` to the value and ``names`` to the original name; matrices
    outside the layer stack (embeddings, pooler) are kept apart in ``others``, by name.
    """

    layers: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Value] = field(default_factory=dict)
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    others: dict[str, Value] = field(default_factory=dict)


def group_by_layer(values: Mapping[str, Value]) -> LayerGrid[Value]:
    """Arrange ``{matrix name: value}`` by layer (in numeric order) and matrix kind (first seen order).

    Two stacks of layers (say ``encoder.layer.N`` and ``decoder.layer.N``) would share layer
    numbers, so layers are then labelled with their stack (``encoder.layer.0``).

    Example:
        >>> grid = group_by_layer({"bert.pooler.dense.weight": 0.1, "bert.encoder.layer.10.output.dense.weight": 0.2,
        ...                        "bert.encoder.layer.9.output.dense.weight": 0.3})
        >>> grid.layers, grid.others
        (['9', '10'], {'bert.pooler.dense': 0.1})
    """
    parsed: list[tuple[str, str, str, Value]] = []
    grid: LayerGrid[Value] = LayerGrid()
    for name, value in values.items():
        bare = name.removesuffix(".weight")
        match = _LAYER.match(bare)
        if match is None:
            grid.others[bare] = value
        else:
            parsed.append((match["stack"] or "", match["index"], match["rest"], value))
    several_stacks = len({stack for stack, _, _, _ in parsed}) > 1
    order: dict[str, tuple[str, int]] = {}
    for stack, index, kind, value in parsed:
        layer = f"{stack}.{index}" if several_stacks else index
        order.setdefault(layer, (stack, int(index)))
        if kind not in grid.kinds:
            grid.kinds.append(kind)
        grid.cells[(layer, kind)] = value
        grid.names[(layer, kind)] = f"{stack}.{index}.{kind}" if stack else f"{index}.{kind}"
    grid.layers = sorted(order, key=lambda layer: order[layer])
    return grid


def plot_sparsity_per_layer(
    per_matrix: Mapping[str, float],
    path: str | os.PathLike[str],
    *,
    overall: float | None = None,
    ylabel: str = "sparsity (share of weights that are zero)",
    title: str = "Sparsity per layer",
) -> str:
    """Draw the sparsity of each pruned matrix as bars grouped by layer into the PNG ``path``.

    ``overall`` (the export's sparsity over all pruned matrices) is drawn as a dashed line.

    Raises:
        ImportError: matplotlib is not installed (the message gives the ``pip`` command).
    """
    grid = group_by_layer(per_matrix)
    return _draw(grid, None, path, ylabel=ylabel, title=title, hline=overall, unit_interval=True)


def plot_rank_per_layer(
    ranks: Mapping[str, tuple[int, int]],
    path: str | os.PathLike[str],
    *,
    title: str = "Kept rank per layer",
) -> str:
    """Draw the kept rank of each rank-pruned matrix (``{name: (kept, full)}``) grouped by layer.

    The full rank is drawn as an empty outline behind each bar, so how much a matrix lost reads
    off the picture without a second axis.

    Raises:
        ImportError: matplotlib is not installed (the message gives the ``pip`` command).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "rank.png")
        >>> plot_rank_per_layer({"encoder.layer.0.output.dense": (5, 32)}, path) == path
        True
    """
    kept = group_by_layer({name: float(pair[0]) for name, pair in ranks.items()})
    full = group_by_layer({name: float(pair[1]) for name, pair in ranks.items()})
    return _draw(
        kept, full, path, ylabel="kept rank (outline: full rank)", title=title, hline=None, unit_interval=False
    )


def _draw(
    grid: LayerGrid[float],
    outline: LayerGrid[float] | None,
    path: str | os.PathLike[str],
    *,
    ylabel: str,
    title: str,
    hline: float | None,
    unit_interval: bool,
) -> str:
    """Grouped bars: one group per layer (then one per matrix outside the layers), one bar per kind."""
    figure_class, canvas_class = _matplotlib()
    columns = [(layer, kind) for layer in grid.layers for kind in grid.kinds]
    width = 0.8 / max(len(grid.kinds), 1)
    figure = figure_class(figsize=(max(6.0, 0.55 * (len(grid.layers) + len(grid.others)) + 3.0), 3.6), dpi=110)
    canvas_class(figure)  # attaches the Agg canvas to the figure; pyplot is never involved
    axes = figure.add_subplot(1, 1, 1)
    positions = {layer: float(i) for i, layer in enumerate(grid.layers)}
    for k, kind in enumerate(grid.kinds):
        xs = [
            positions[layer] - 0.4 + width * (k + 0.5)
            for layer, kd in columns
            if kd == kind and (layer, kd) in grid.cells
        ]
        ys = [grid.cells[(layer, kd)] for layer, kd in columns if kd == kind and (layer, kd) in grid.cells]
        if outline is not None:
            full = [outline.cells[(layer, kd)] for layer, kd in columns if kd == kind and (layer, kd) in grid.cells]
            axes.bar(xs, full, width=width * 0.95, fill=False, edgecolor="0.6", linewidth=0.8)
        # An explicit colour: the outline bars would otherwise advance the colour cycle, and the
        # same kind would change colour between the rank and the sparsity plot.
        axes.bar(xs, ys, width=width * 0.95, label=kind, color=f"C{k % 10}")
    other_start = len(grid.layers)
    for i, (name, value) in enumerate(grid.others.items()):
        if outline is not None:
            axes.bar([other_start + i], [outline.others[name]], width=0.6, fill=False, edgecolor="0.6", linewidth=0.8)
        axes.bar([other_start + i], [value], width=0.6, color="0.45")
    labels = [f"layer {layer}" for layer in grid.layers] + [".".join(name.split(".")[-2:]) for name in grid.others]
    # Slanted when they would collide (many layers, or long names of matrices outside the layers).
    slanted = len(labels) > 8 or any(len(label) > 10 for label in labels)
    axes.set_xticks(
        range(len(labels)), labels, rotation=30 if slanted else 0, ha="right" if slanted else "center", fontsize=8
    )
    if hline is not None:
        axes.axhline(hline, linestyle="--", color="black", linewidth=1, label=f"overall {hline:.1%}")
    if unit_interval:
        axes.set_ylim(0.0, 1.0)
        axes.yaxis.set_major_formatter(_percent_formatter())
    axes.set_ylabel(ylabel, fontsize=8)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    figure.tight_layout()
    # No "Software" entry: the PNG's bytes then depend only on the data and the drawing code, not
    # on the matplotlib version (a re-rendered card does not show a spurious binary change).
    figure.savefig(os.fspath(path), format="png", metadata={"Software": None})
    return os.fspath(path)


def _matplotlib() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or an ImportError that says how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "Drawing the model card's per-layer plot needs matplotlib: pip install matplotlib "
            "(or pip install 'hf-prune[dev]')."
        ) from err
    return Figure, FigureCanvasAgg


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)
