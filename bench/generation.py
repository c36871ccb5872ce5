"""Caption generation speed: the compiled loop against naive Python loops.

For a batch of 64 images, greedy and beam-3 search, three ways:

- `compiled`: `mmzoo.captioning.CaptionGenerator`, one XLA-compiled
  `tf.function` holding the whole loop (image encoder once, one LSTM step per
  token);
- `naive`: a Python loop that calls the Keras model once per token on the
  padded prefix and reads the logits at the current position (how Keras
  captioning tutorials decode);
- `eager steps`: a Python loop of eager `model.decode_step` calls (the
  incremental step, not compiled), to show how much of the speed-up is the
  step decoder and how much the compilation.

Prints median seconds per batch over repeats, captions per second and the
speed-up of the compiled loop over each Python loop, and checks that all three
produce the same captions. By default the model is the one
`notebooks/captioning.ipynb` trains (random weights, so no caption ends early
and every loop runs all `max_length` steps); `--model` loads a trained
`.keras` file instead.

Usage:
    python bench/generation.py [--model captioner.keras] [--repeats 5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import mmzoo  # noqa: E402,F401
from mmzoo.captioning import CaptionGenerator, naive_greedy  # noqa: E402
from mmzoo.captioning.generate import _NEG, _banned_bias  # noqa: E402
from mmzoo.data.tokenizer import END, PAD, START  # noqa: E402


def naive_beam(model, images, beam_width, max_length, length_penalty=0.0):
    """Beam search from Python, the full model once per token (same rules as `beam_search`)."""
    n, k, vocab = len(images), beam_width, model.vocab_size
    bias = _banned_bias(vocab, START).numpy()
    images = np.repeat(images, k, axis=0)
    prefix = np.zeros((n * k, model.sequence_length), np.int32)
    prefix[:, 0] = START
    sums = np.full((n, k), _NEG, np.float32)
    sums[:, 0] = 0.0
    lengths = np.zeros((n, k), np.int32)
    done = np.zeros((n, k), bool)
    seqs = np.zeros((n, k, max_length), np.int32)
    for t in range(max_length):
        logits = model({"image": images, "text": prefix}, training=False)["logits"][:, t]
        logp = tf.nn.log_softmax(logits + bias).numpy().reshape(n, k, vocab)
        finished = np.where(np.arange(vocab) == PAD, sums[:, :, None], _NEG)
        cand_sums = np.where(done[:, :, None], finished, sums[:, :, None] + logp)
        cand_lengths = np.where(done, lengths, t + 1)
        scores = cand_sums / np.maximum(cand_lengths, 1)[:, :, None] ** length_penalty
        flat = np.argsort(-scores.reshape(n, -1), axis=1, kind="stable")[:, :k]
        parent, token = flat // vocab, flat % vocab
        rows = np.arange(n)[:, None]
        sums = cand_sums.reshape(n, -1)[rows, flat]
        lengths = cand_lengths[rows, parent]
        done = done[rows, parent] | (token == END)
        seqs = seqs[rows, parent]
        seqs[:, :, t] = token
        prefix = prefix.reshape(n, k, -1)[rows, parent].reshape(n * k, -1)
        if t + 1 < model.sequence_length:
            prefix[:, t + 1] = token.reshape(-1)
        if done.all():
            break
    best = np.argmax(sums / np.maximum(lengths, 1) ** length_penalty, axis=1)
    ids = seqs[np.arange(n), best]
    return np.where(ids == END, 0, ids)


def eager_steps(model, images, max_length):
    """Greedy from Python with eager `decode_step` calls (incremental, not compiled)."""
    bias = _banned_bias(model.vocab_size, START)
    states, context = model.encode(images)
    token = tf.fill([len(images)], START)
    done = np.zeros(len(images), bool)
    ids = np.zeros((len(images), max_length), np.int32)
    for t in range(max_length):
        logits, states = model.decode_step(token, states, context)
        step = np.where(done, 0, tf.argmax(logits + bias, -1).numpy()).astype(np.int32)
        ids[:, t] = step
        done |= step == END
        if done.all():
            break
        token = tf.constant(step)
    return np.where(ids == END, 0, ids)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained captioning .keras file")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--architecture", default="inject", choices=("inject", "merge"))
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    if args.model:
        model = keras.saving.load_model(args.model)
    else:  # the notebook's captioner, untrained
        model = mmzoo.build_model(
            "captioning", image_branch="cnn", image_shape=(32, 32, 3), pooling="flatten",
            architecture=args.architecture, vocab_size=61, sequence_length=30,
            embedding_dim=64, text_units=256, compile=False)
    shape = tuple(model.input["image"].shape[1:])
    images = np.random.default_rng(0).integers(0, 256, (args.batch,) + shape).astype("float32")
    max_length = model.sequence_length
    generator = CaptionGenerator(model)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"model: {model.architecture}, image {shape}, vocab {model.vocab_size}, "
          f"max_length {max_length}, batch {args.batch}; {device}, {os.cpu_count()} cores")

    rows = []
    for method, width in (("greedy", 1), ("beam", 3)):
        def compiled():
            return generator(images, method=method, beam_width=width, batch_size=args.batch)

        start = time.perf_counter()
        compiled()  # the first call traces and compiles
        compile_s = time.perf_counter() - start
        t_compiled, fast = timed(compiled, args.repeats)
        if method == "greedy":
            t_naive, slow = timed(lambda: naive_greedy(model, images)[0], args.naive_repeats)
            t_eager, eager = timed(lambda: eager_steps(model, images, max_length),
                                   args.naive_repeats)
            same = bool((slow == fast.tokens).all() and (eager == fast.tokens).all())
        else:
            t_naive, slow = timed(lambda: naive_beam(model, images, width, max_length),
                                  args.naive_repeats)
            t_eager = None
            same = bool((slow == fast.tokens).all())
        rows.append((method, width, compile_s, t_compiled, t_naive, t_eager, same))

    print(f"\n{'search':<8} {'compile s':>9} {'compiled s':>10} {'naive s':>8} "
          f"{'eager s':>8} {'captions/s':>10} {'vs naive':>9} {'vs eager':>9}  same")
    for method, width, compile_s, t_c, t_n, t_e, same in rows:
        name = "greedy" if method == "greedy" else f"beam-{width}"
        eager = f"{t_e:8.3f}" if t_e else f"{'-':>8}"
        vs_eager = f"{t_e / t_c:8.1f}x" if t_e else f"{'-':>9}"
        print(f"{name:<8} {compile_s:9.2f} {t_c:10.4f} {t_n:8.3f} {eager} "
              f"{args.batch / t_c:10.0f} {t_n / t_c:8.1f}x {vs_eager}  {same}")
        print(f"{'':<8} naive: {args.batch / t_n:.0f} captions/s")
    greedy_speedup = rows[0][4] / rows[0][3]
    print(f"\ngreedy speed-up, compiled vs naive: {greedy_speedup:.1f}x "
          f"({'meets' if greedy_speedup >= 10 else 'below'} the 10x goal)")


if __name__ == "__main__":
    main()
