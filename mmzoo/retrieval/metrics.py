"""Retrieval metrics: recall@K in both directions and the median rank.

Pure NumPy (no TensorFlow): item `i` of the image gallery and item `i` of
the text gallery are a pair; every other item is a negative.

References: recall@K and median rank as reported for image-text retrieval
by Karpathy & Fei-Fei (2015), Faghri et al. (VSE++, 2018) and Radford et al.
(CLIP, 2021).
"""

import numpy as np

#: The K of the recall@K metrics that `retrieval_metrics` reports.
RECALL_KS = (1, 5, 10)


def _embeddings(x, name):
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or not len(x):
        raise ValueError(f"`{name}` must be a non-empty array of embeddings (N, D). "
                         f"Received: {name} with shape {x.shape}")
    return x


def pair_ranks(queries, gallery):
    """The rank (1 = first) of each query's own pair in the gallery.

    Args:
        queries: `(N, D)` embeddings; query `i`'s pair is `gallery[i]`.
        gallery: `(N, D)` embeddings.

    Returns:
        int `(N,)` ranks in `[1, N]`. Ties count against the query (an item
        scoring exactly as high as the pair ranks before it), so a constant
        embedding scores the worst rank, not the best.

    Raises:
        ValueError: shapes that are not two `(N, D)` arrays of equal shape.
    """
    queries, gallery = _embeddings(queries, "queries"), _embeddings(gallery, "gallery")
    if queries.shape != gallery.shape:
        raise ValueError("`queries` and `gallery` must be paired row by row (same shape). "
                         f"Received: queries {queries.shape}, gallery {gallery.shape}")
    scores = queries @ gallery.T                       # (N, N)
    own = np.diag(scores)[:, None]
    others = scores >= own
    return others.sum(axis=1).astype(np.int64)       # the pair counts itself: >= 1


def retrieval_metrics(image_embeddings, text_embeddings, ks=RECALL_KS):
    """Recall@K both ways and the median rank of a paired gallery.

    Args:
        image_embeddings: `(N, D)`, row `i` the image of pair `i`.
        text_embeddings: `(N, D)`, row `i` its text.
        ks: the K values.

    Returns:
        A flat dict of floats: `image_to_text_recall_at_<k>` (an image
        queries the texts), `text_to_image_recall_at_<k>`, and
        `image_to_text_median_rank` / `text_to_image_median_rank` (1 is
        best), plus `num_examples` (the gallery size).

    Example:
    >>> retrieval_metrics(np.eye(3), np.eye(3))["image_to_text_recall_at_1"]
    1.0
    """
    i2t = pair_ranks(image_embeddings, text_embeddings)
    t2i = pair_ranks(text_embeddings, image_embeddings)
    out = {"num_examples": int(len(i2t))}
    for direction, ranks in (("image_to_text", i2t), ("text_to_image", t2i)):
        for k in ks:
            out[f"{direction}_recall_at_{k}"] = float(np.mean(ranks <= k))
        out[f"{direction}_median_rank"] = float(np.median(ranks))
    return out


def rank_gallery(queries, gallery, top_k=5):
    """The `top_k` best gallery items for each query, by cosine similarity.

    Args:
        queries: `(Q, D)` L2-normalised embeddings.
        gallery: `(G, D)` L2-normalised embeddings.
        top_k: items per query (at most `G`).

    Returns:
        One list per query of `(gallery index, similarity)`, best first.
    """
    queries, gallery = _embeddings(queries, "queries"), _embeddings(gallery, "gallery")
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError("`queries` and `gallery` must have the same embedding size. "
                         f"Received: {queries.shape[1]} and {gallery.shape[1]}")
    scores = queries @ gallery.T
    k = min(int(top_k), scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(int(j), float(scores[i, j])) for j in row] for i, row in enumerate(order)]
