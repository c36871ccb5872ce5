"""Image-text retrieval: a dual encoder trained with the symmetric InfoNCE loss (CLIP).

- `mmzoo.retrieval.model`: `DualEncoderModel` (an image tower and a text
  tower projected into one L2-normalised space) and `InfoNCELoss` (the
  contrastive loss with a learned temperature);
- `mmzoo.retrieval.metrics`: recall@K in both directions and the median rank;
- the task itself is `mmzoo.tasks.retrieval` (`build_model("retrieval", ...)`).
"""

from mmzoo.retrieval.metrics import rank_gallery, retrieval_metrics

__all__ = ["rank_gallery", "retrieval_metrics"]
