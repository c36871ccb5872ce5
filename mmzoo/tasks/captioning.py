"""The `"captioning"` task: a caption per image (an LSTM decoder, `mmzoo.captioning`).

Its model is a `CaptioningModel`: it reads the image and the caption so far
and predicts the next token, so its labels are the caption itself, shifted
(`label_format="next_tokens"`), and `predict` generates (greedy or beam
search). The benchmark's captions problem feeds it.

The decoder head, its loss and metrics are registered by
`mmzoo.captioning.model`, which this task imports when first used (so that
`build_model("captioning")` works in a fresh process, and no module imports
the other in a cycle).
"""

import numpy as np

from mmzoo.registry import TASKS
from mmzoo.tasks.base import Task


@TASKS.register
class CaptioningTask(Task):
    name = "captioning"
    display_name = "captioning (LSTM decoder)"
    # loss and metrics: the decoder head's registration (a masked loss and
    # MaskedAccuracy, which need Keras: declared there, not here).
    label_format = "next_tokens"
    reads_text = False
    generative = True
    eval_metrics = ("bleu", "cider_d")
    fit_metrics = ("loss", "accuracy")
    decision = None
    stackable = False
    explainable = True  # word by word (mmzoo.explain: CaptionExplanation)
    example_text = None
    result_description = "a caption string per image"

    def register_components(self):
        from mmzoo.captioning import model  # noqa: F401  (the decoder head)

    def model_class(self):
        from mmzoo.captioning.model import CaptioningModel

        return CaptioningModel

    def resolve_options(self, options):
        from mmzoo.captioning.model import resolve_captioning_options

        return resolve_captioning_options(self.name, options)

    def generate(self, model, images, tokenizer, **settings):
        from mmzoo.captioning import generate

        return generate(model, images, tokenizer, **settings)

    def decode(self, outputs, preprocessor, *, top_k=3, threshold=0.5):
        if preprocessor.tokenizer is None:
            raise ValueError("Decoding captions needs the tokenizer. Received: a "
                             "preprocessor without tokenizer")
        texts = getattr(outputs, "texts", None)
        if texts is not None:
            return list(texts)
        tokens = np.asarray(getattr(outputs, "tokens", outputs))
        if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError("For captioning, `outputs` must be generated token ids "
                             "(batch, length) or a mmzoo.captioning.Captions. Received: "
                             f"outputs with shape {tokens.shape} and dtype {tokens.dtype}")
        return list(preprocessor.tokenizer.decode(tokens))
