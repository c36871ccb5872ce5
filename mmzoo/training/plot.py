"""The training-curve plot: loss and one metric per epoch, train vs validation."""


def plot_history(history, path, metric=None, title=None, best_epoch=None, distillation=None):
    """Writes a PNG with the loss and `metric` per epoch, train and validation.

    Args:
        history: `{"loss": [...], "val_loss": [...], metric: [...], ...}`.
        path: the PNG file.
        metric: the second panel's metric (e.g. `"accuracy"`); `None` or a
            metric missing from `history` draws the loss only.
        title: the figure title.
        best_epoch: marks this epoch (1-based), e.g. the restored checkpoint.
        distillation: the history of a distillation stage before training
            (`mmzoo.training.distill`: `cosine`, `val_cosine`, ...): a first
            panel shows its feature cosine similarity per epoch.

    Returns:
        `path`.
    """
    # The object-oriented API with the Agg canvas: no pyplot global state, no
    # GUI backend, safe in threads and headless machines.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [("loss", history)] + ([(metric, history)] if metric and metric in history else [])
    if distillation and distillation.get("cosine"):
        panels.insert(0, ("cosine", distillation))
    fig = Figure(figsize=(5 * len(panels), 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for i, (key, record) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if record is not history:
            ax.set_title("distillation: student vs teacher features", fontsize=9)
        for name, style in ((key, "-o"), (f"val_{key}", "--s")):
            values = record.get(name)
            if values:
                epochs = range(1, len(values) + 1)
                label = "validation" if name.startswith("val_") else "train"
                ax.plot(epochs, values, style, markersize=3, label=label)
        if best_epoch and record is history:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("distillation epoch" if record is not history else "epoch")
        ax.set_ylabel("cosine similarity" if record is not history else key.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_tuning(rows, dimensions, monitor, mode, path):
    """Writes a PNG of a hyperparameter search (see `mmzoo.training.tuning`).

    Left: each trial's score in the order the trials ran, with the best so far.
    Right: the best score reached with each value of the first categorical
    option searched (e.g. each fusion), when there is one.

    Args:
        rows: one dict per trial, with `trial_id`, `score` and the searched values.
        dimensions: the searched `Dimension`s.
        monitor: the score's name (e.g. `"val_accuracy"`).
        mode: `"max"` or `"min"`: which way is better.
        path: the PNG file.

    Returns:
        `path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = sorted((r for r in rows if r.get("score") is not None), key=lambda r: r["trial_id"])
    better = max if mode == "max" else min
    choice = next((d for d in dimensions if d.kind == "choice" and len(d.values) > 1), None)
    fig = Figure(figsize=(11 if choice else 5.5, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2 if choice else 1, 1)
    scores = [r["score"] for r in done]
    best = [better(scores[:i + 1]) for i in range(len(scores))]
    order = range(1, len(done) + 1)
    if choice:
        for value in choice.values:
            xs = [i for i, r in zip(order, done) if r.get(choice.name) == value]
            ax.plot(xs, [done[i - 1]["score"] for i in xs], "o", label=f"{choice.name}={value}")
    else:
        ax.plot(order, scores, "o", label="trial")
    ax.step(order, best, where="post", color="black", label="best so far")
    ax.set_xlabel("trial (in the order run)")
    ax.set_ylabel(monitor.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if choice:
        ax2 = fig.add_subplot(1, 2, 2)
        values = [v for v in choice.values if any(r.get(choice.name) == v for r in done)]
        tops = [better(r["score"] for r in done if r.get(choice.name) == v) for v in values]
        bars = ax2.bar([str(v) for v in values], tops, color="tab:blue")
        ax2.bar_label(bars, fmt="%.3f", fontsize=8)
        ax2.set_xlabel(choice.name)
        ax2.set_ylabel(f"best {monitor.replace('_', ' ')}")
        ax2.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Hyperparameter search: {len(done)} trials")
    fig.tight_layout()
    fig.savefig(path)
    return path
