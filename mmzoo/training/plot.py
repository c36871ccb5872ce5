"""The training-curve plot: loss and one metric per epoch, train vs validation."""


def plot_history(history, path, metric=None, title=None, best_epoch=None):
    """Writes a PNG with the loss and `metric` per epoch, train and validation.

    Args:
        history: `{"loss": [...], "val_loss": [...], metric: [...], ...}`.
        path: the PNG file.
        metric: the second panel's metric (e.g. `"accuracy"`); `None` or a
            metric missing from `history` draws the loss only.
        title: the figure title.
        best_epoch: marks this epoch (1-based), e.g. the restored checkpoint.

    Returns:
        `path`.
    """
    # The object-oriented API with the Agg canvas: no pyplot global state, no
    # GUI backend, safe in threads and headless machines.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = ["loss"] + ([metric] if metric and metric in history else [])
    fig = Figure(figsize=(5 * len(panels), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, key in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for name, style in ((key, "-o"), (f"val_{key}", "--s")):
            values = history.get(name)
            if values:
                epochs = range(1, len(values) + 1)
                label = "validation" if name.startswith("val_") else "train"
                ax.plot(epochs, values, style, markersize=3, label=label)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return path
