"""The `"retrieval"` task: image-text retrieval with a dual encoder (`mmzoo.retrieval`).

Its model is a `DualEncoderModel`: an image tower and a text tower, projected
into one L2-normalised space and trained with the symmetric InfoNCE loss,
which needs no labels (pair `i` of a batch is image `i` and text `i`). It is
measured on a paired gallery (the evaluation split: image `i` with its
caption `i`) by recall@1/5/10 in both directions and the median rank.
`entry.predict` embeds images or texts, or, given both, ranks one against
the other. The benchmark's `retrieval_pairs` problem feeds it.
"""

import numpy as np

from mmzoo.registry import TASKS
from mmzoo.tasks.base import Task

RANK_QUERIES = ("images", "texts")


@TASKS.register
class RetrievalTask(Task):
    name = "retrieval"
    display_name = "image-text retrieval (dual encoder, InfoNCE)"
    loss = None  # the InfoNCE layer adds its loss; `fit` ignores the labels
    loss_in_model = True
    label_format = "pair"
    reads_text = True
    eval_metrics = ("recall", "median_rank")
    fit_metrics = ("loss",)
    decision = None
    stackable = False
    explainable = False
    example_text = "texts=..."
    result_description = ("an embedding per image or text (unit vectors); given both, the "
                          "best matches of each query in the other modality's gallery")

    def register_components(self):
        from mmzoo.retrieval import model  # noqa: F401  (the head and the loss layer)

    def model_class(self):
        from mmzoo.retrieval.model import DualEncoderModel

        return DualEncoderModel

    def resolve_options(self, options):
        from mmzoo.retrieval.model import resolve_retrieval_options

        return resolve_retrieval_options(self.name, options)

    def compile_metrics(self, metrics=None):
        if metrics:
            raise ValueError("A dual encoder is measured on a gallery (recall@K), not per "
                             "batch: `metrics` cannot be set. Received: metrics="
                             f"{metrics!r}")
        return []

    def output_names(self):
        from mmzoo.retrieval.model import OUTPUTS

        return OUTPUTS

    # -- evaluation ---------------------------------------------------------------

    def measure_outputs(self, outputs, y, *, wanted=None, groups=None):
        from mmzoo.retrieval import retrieval_metrics

        names = self.output_names()
        metrics = retrieval_metrics(outputs[names["image"]], outputs[names["text"]])
        wanted = set(self.eval_metrics if wanted is None else wanted)
        keep = {"num_examples"}
        if "recall" in wanted:
            keep |= {k for k in metrics if "_recall_at_" in k}
        if "median_rank" in wanted:
            keep |= {k for k in metrics if k.endswith("_median_rank")}
        return {k: v for k, v in metrics.items() if k in keep}

    # -- predictions --------------------------------------------------------------

    def decode(self, outputs, preprocessor, *, top_k=3, threshold=0.5):
        """The embeddings: `{"image_embeds": (N, D), "text_embeds": (N, D)}` as given."""
        return outputs

    def predict_entry(self, entry, images=None, texts=None, *, top_k=3, batch_size=32,
                      query="images", **settings):
        """Embeds, or ranks: see `ZooEntry.predict` (`query`: which side asks)."""
        if settings:
            raise TypeError(f"Unexpected argument(s) {sorted(settings)} for a retrieval entry "
                            f"(it takes `query`). Received: {sorted(settings)[0]}")
        if query not in RANK_QUERIES:
            raise ValueError(f"`query` must be one of {RANK_QUERIES}. Received: query={query!r}")
        if images is None and texts is None:
            raise ValueError(f"Entry {entry.name!r} embeds images or texts: pass `images`, "
                             "`texts`, or both to rank one against the other. Received: "
                             "images=None, texts=None")
        from mmzoo.retrieval import rank_gallery

        embeds = {}
        if images is not None:
            pixels = entry.preprocessor.preprocess_images(images)
            embeds["images"] = entry.model.image_tower.predict(
                {"image": pixels}, batch_size=batch_size, verbose=0)
        if texts is not None:
            text_list = [texts] if isinstance(texts, str) else list(texts)
            ids = entry.preprocessor.preprocess_texts(text_list)
            embeds["texts"] = entry.model.text_tower.predict(
                {"text": ids}, batch_size=batch_size, verbose=0)
        if len(embeds) == 1:
            return next(iter(embeds.values()))
        gallery = "texts" if query == "images" else "images"
        ranked = rank_gallery(embeds[query], embeds[gallery], top_k=top_k)
        if gallery == "texts":
            return [[(text_list[j], score) for j, score in row] for row in ranked]
        return ranked

    def export_parts(self, model):
        """Each tower alone: a gallery is embedded once, queries one by one."""
        return {"image_tower": model.image_tower, "text_tower": model.text_tower}

    def describe(self, result):
        if isinstance(result, (list, tuple)):
            return [f"  {item!r}  {score:.3f}" for item, score in result]
        vector = np.asarray(result)
        return [f"  embedding of size {vector.shape[-1]}: "
                + " ".join(f"{v:+.3f}" for v in vector[:6]) + (" ..." if vector.size > 6 else "")]
