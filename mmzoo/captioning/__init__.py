"""Image captioning: an LSTM decoder model, compiled generation, caption metrics.

`mmzoo.build_model("captioning", ...)` returns a `CaptioningModel` (importing
this package registers the task). Generation: `CaptionGenerator` /
`generate` (greedy and beam search, XLA-compiled loops). Metrics:
`corpus_bleu`, `cider_d`, `caption_metrics`. Export lives with the other
exports: `mmzoo.export(captioner, path)` writes a SavedModel from images to
caption strings, `format="tflite"` a folder with an image encoder, a one-step
decoder and an unrolled greedy decoder (see `mmzoo.export.captioning`, which
also has `TFLiteCaptioner` to run them).

Example:

```python
import mmzoo
from mmzoo.captioning import CaptionGenerator, caption_metrics

model = mmzoo.build_model("captioning", image_branch="cnn", image_shape=(32, 32, 3),
                          vocab_size=tokenizer.vocab_size, sequence_length=16,
                          architecture="inject")
model.fit({"image": images, "text": prefixes}, next_tokens, epochs=10)
captions = CaptionGenerator(model, tokenizer)(images, method="beam", beam_width=3)
caption_metrics(captions.texts, references)  # bleu_1..bleu_4, cider_d
```
"""

from mmzoo.captioning.generate import (
    CaptionGenerator,
    Captions,
    beam_search,
    generate,
    greedy_search,
    naive_greedy,
)
from mmzoo.captioning.metrics import caption_metrics, cider_d, corpus_bleu
from mmzoo.captioning.model import CaptioningModel, MaskedAccuracy, lstm_decoder

__all__ = [
    "CaptioningModel",
    "MaskedAccuracy",
    "lstm_decoder",
    "CaptionGenerator",
    "Captions",
    "generate",
    "greedy_search",
    "beam_search",
    "naive_greedy",
    "corpus_bleu",
    "cider_d",
    "caption_metrics",
]
