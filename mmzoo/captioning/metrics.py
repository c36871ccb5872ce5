"""Caption metrics: corpus BLEU-1..4 and CIDEr-D, with several references per image.

Pure Python; no TensorFlow. Captions are strings (split on whitespace, or by
`tokenize`) or sequences of tokens.

- **BLEU-n** (Papineni et al., 2002), corpus level: n-gram precisions clipped by
  the largest count in any reference, summed over the corpus, combined as a
  geometric mean with uniform weights `1/n`, times the brevity penalty
  `exp(1 - r / c)` when the total hypothesis length `c` is below the total
  closest-reference length `r` (ties go to the shorter reference). A
  precision with no match makes the score 0. Equals `nltk`'s `corpus_bleu`
  (no smoothing) whenever every hypothesis has at least n words; nltk counts a
  shorter hypothesis as one n-gram, this counts its true zero.
- **CIDEr-D** (Vedantam et al., 2015), as in the coco-caption `CiderD` scorer:
  TF-IDF n-gram vectors (n = 1..4, document frequency over the reference
  sets of the corpus), candidate weights clipped by the reference's,
  cosine similarity per n times a Gaussian length penalty
  (`sigma = 6`), averaged over n and the references, times 10.

Example:

```python
corpus_bleu(["a red circle"], [["a red circle", "one red circle"]])  # {"bleu_1": 1.0, ...}
cider_d(hypotheses, references)  # {"cider_d": ..., "per_image": [...]}
```
"""

import collections
import math


def _tokens(text, tokenize):
    if isinstance(text, (str, bytes)):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return (tokenize or str.split)(text)
    return list(text)


def _prepare(hypotheses, references, tokenize):
    hypotheses = list(hypotheses)
    references = list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            "Each hypothesis needs its list of references: got "
            f"{len(hypotheses)} hypotheses and {len(references)} reference lists. "
            f"Received: len(hypotheses)={len(hypotheses)}, len(references)={len(references)}")
    hyps = [_tokens(h, tokenize) for h in hypotheses]
    refs = []
    for i, group in enumerate(references):
        if isinstance(group, (str, bytes)):
            group = [group]
        group = [_tokens(r, tokenize) for r in group]
        if not group:
            raise ValueError(f"Every hypothesis needs at least one reference. "
                             f"Received: references[{i}]=[]")
        refs.append(group)
    return hyps, refs


def ngram_counts(tokens, n):
    """`Counter` of the n-grams (tuples) of one token list."""
    return collections.Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses, references, max_order=4, tokenize=None):
    """Corpus BLEU-1 .. BLEU-`max_order` (see the module doc).

    Args:
        hypotheses: one caption per image (string or tokens).
        references: one list of reference captions per image.
        max_order: the largest n.
        tokenize: splits a string into tokens (default: on whitespace).

    Returns:
        `{"bleu_1": ..., ..., "bleu_<max_order>": ...}`, floats in [0, 1].
    """
    hyps, refs = _prepare(hypotheses, references, tokenize)
    matches = [0] * max_order
    totals = [0] * max_order
    hyp_length = ref_length = 0
    for hyp, group in zip(hyps, refs):
        hyp_length += len(hyp)
        lengths = [len(r) for r in group]
        ref_length += min(lengths, key=lambda r: (abs(r - len(hyp)), r))
        for n in range(1, max_order + 1):
            counts = ngram_counts(hyp, n)
            most = collections.Counter()
            for ref in group:
                most |= ngram_counts(ref, n)  # elementwise max over references
            matches[n - 1] += sum(min(c, most[g]) for g, c in counts.items())
            totals[n - 1] += sum(counts.values())
    if hyp_length == 0:
        brevity = 0.0
    elif hyp_length >= ref_length:
        brevity = 1.0
    else:
        brevity = math.exp(1.0 - ref_length / hyp_length)
    scores = {}
    for order in range(1, max_order + 1):
        if any(matches[n] == 0 for n in range(order)):
            scores[f"bleu_{order}"] = 0.0
            continue
        log_mean = sum(math.log(matches[n] / totals[n]) for n in range(order)) / order
        scores[f"bleu_{order}"] = brevity * math.exp(log_mean)
    return scores


def cider_d(hypotheses, references, tokenize=None, max_order=4, sigma=6.0):
    """Corpus CIDEr-D (see the module doc).

    Document frequencies come from the references of this corpus, so the
    score of one caption depends on the whole corpus (and a corpus of one
    image scores 0: every n-gram then has idf 0).

    Args:
        hypotheses: one caption per image (string or tokens).
        references: one list of reference captions per image.
        tokenize: splits a string into tokens (default: on whitespace).
        max_order: the largest n-gram order.
        sigma: width of the Gaussian length penalty.

    Returns:
        `{"cider_d": mean score, "per_image": [score per image]}`.
    """
    hyps, refs = _prepare(hypotheses, references, tokenize)

    def counts(tokens):
        out = collections.Counter()
        for n in range(1, max_order + 1):
            out.update(ngram_counts(tokens, n))
        return out

    hyp_counts = [counts(h) for h in hyps]
    ref_counts = [[counts(r) for r in group] for group in refs]
    document_frequency = collections.Counter()
    for group in ref_counts:
        document_frequency.update(set().union(*(set(c) for c in group)))
    log_documents = math.log(float(len(refs))) if refs else 0.0

    def vector(cnts):
        vec = [dict() for _ in range(max_order)]
        norm = [0.0] * max_order
        length = 0
        for gram, tf in cnts.items():
            n = len(gram) - 1
            df = math.log(max(1.0, document_frequency[gram]))
            vec[n][gram] = float(tf) * (log_documents - df)
            norm[n] += vec[n][gram] ** 2
            # The coco-caption scorer counts the length in bigrams; kept, so
            # that scores compare with published ones.
            if n == 1:
                length += tf
        return vec, [math.sqrt(v) for v in norm], length

    def similarity(hyp, ref):
        (vec_h, norm_h, len_h), (vec_r, norm_r, len_r) = hyp, ref
        penalty = math.exp(-((len_h - len_r) ** 2) / (2 * sigma ** 2))
        values = []
        for n in range(max_order):
            value = sum(min(w, vec_r[n].get(g, 0.0)) * vec_r[n].get(g, 0.0)
                        for g, w in vec_h[n].items())
            if norm_h[n] != 0 and norm_r[n] != 0:
                value /= norm_h[n] * norm_r[n]
            values.append(value * penalty)
        return values

    per_image = []
    for cnts, group in zip(hyp_counts, ref_counts):
        hyp = vector(cnts)
        total = [0.0] * max_order
        for ref in group:
            for n, v in enumerate(similarity(hyp, vector(ref))):
                total[n] += v
        per_image.append(10.0 * (sum(total) / max_order) / len(group))
    mean = sum(per_image) / len(per_image) if per_image else 0.0
    return {"cider_d": mean, "per_image": per_image}


def caption_metrics(hypotheses, references, tokenize=None):
    """BLEU-1..4 and CIDEr-D in one dict (`bleu_1` .. `bleu_4`, `cider_d`)."""
    scores = corpus_bleu(hypotheses, references, tokenize=tokenize)
    scores["cider_d"] = cider_d(hypotheses, references, tokenize=tokenize)["cider_d"]
    return scores
