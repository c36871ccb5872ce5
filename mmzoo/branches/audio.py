"""Audio branches: a raw waveform in, a feature vector out; the log-mel front end in the graph.

Each branch is a functional `keras.Model` named `audio_<branch>` from float32
samples `(batch, audio_samples)` (mono, in [-1, 1], at `audio_sample_rate`
Hz, 16 kHz by default) to `(batch, features)`. The first layer of every
branch is `LogMelSpectrogram`, so a saved, SavedModel or TFLite model takes
the raw samples and nothing has to be reproduced outside it (the host only
reads, resamples and pads the audio: `mmzoo.audio_io`).

The front end is a short-time Fourier transform computed as a strided 1-D
convolution with fixed DFT kernels (the way `keras.layers.STFTSpectrogram`
computes it), then triangular mel filters (Davis & Mermelstein 1980), a
logarithm and a per-utterance normalisation. It converts to TFLite builtin
ops only (CONV_2D, MUL, FULLY_CONNECTED, LOG, MEAN, SQUARED_DIFFERENCE,
RSQRT, SUB, STRIDED_SLICE); `keras.layers.MelSpectrogram` does not: it calls `tf.signal.stft`
(RFFT) and scales decibels relative to the loudest value of the whole
batch, so one example's features would depend on the others.

Example:

```python
import mmzoo
model = mmzoo.build_model("classification", image_branch="convnet", text_branch=None,
                          audio_branch="cnn", image_shape=(32, 32, 3), num_classes=20)
model.input  # {'image': (None, 32, 32, 3), 'audio': (None, 48000)}
```
"""

import math

import keras
import numpy as np
from keras import ops

from mmzoo.registry import AUDIO_BRANCHES
from mmzoo.validators import at_least, choice, positive_int

#: The sample rate of the branches unless `audio_sample_rate` says otherwise (Hz).
SAMPLE_RATE = 16000
#: Analysis window and hop of the branches' front end, in seconds (25 ms, 10 ms).
FRAME_SECONDS = 0.025
STEP_SECONDS = 0.010
#: The front end's normalisations: per utterance (each band's mean and variance
#: over time), or none (the log-mel values themselves).
NORMALIZATIONS = ("utterance", None)

# The options every audio branch shares (one validator per option, see mmzoo.validators).
SAMPLE_RATE_CHECK = at_least(8000, "Hz; the mel bands reach up to half of it")
NORMALIZATION = choice(*NORMALIZATIONS)
FRONT_END_VALIDATORS = {"audio_sample_rate": SAMPLE_RATE_CHECK, "audio_mel_bins": positive_int,
                        "audio_normalization": NORMALIZATION}
AUDIO_POOLING = choice("avg", "max", "flatten")


def hertz_to_mel(frequency):
    """The mel scale of HTK (and `tf.signal`): `1127 * ln(1 + f / 700)`, `f` in Hz."""
    return 1127.0 * np.log1p(np.asarray(frequency, np.float64) / 700.0)


def mel_to_hertz(mel):
    """The inverse of `hertz_to_mel`: Hz of a mel value."""
    return 700.0 * np.expm1(np.asarray(mel, np.float64) / 1127.0)


def mel_filterbank(sample_rate, fft_length, num_mel_bins, min_freq, max_freq):
    """Triangular mel filters, `(fft_length // 2 + 1, num_mel_bins)` float64.

    Band `j` rises linearly (on the mel scale) from the centre of band
    `j - 1` to its own centre, where its weight is 1, and falls to the
    centre of band `j + 1`; the `num_mel_bins + 2` edges are evenly spaced in
    mel from `min_freq` to `max_freq` (Davis & Mermelstein 1980; the HTK
    filters, as `tf.signal.linear_to_mel_weight_matrix` makes them). The DC
    bin gets no weight.
    """
    bins = fft_length // 2 + 1
    mels = hertz_to_mel(np.arange(bins) * sample_rate / fft_length)[:, None]
    edges = np.linspace(hertz_to_mel(min_freq), hertz_to_mel(max_freq), num_mel_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mels - lower) / (centre - lower),
                                         (upper - mels) / (upper - centre)))
    weights[0] = 0.0
    return weights


def band_centres(sample_rate=SAMPLE_RATE, num_mel_bins=40, min_freq=20.0, max_freq=None):
    """The centre frequency (Hz) of each mel band of `LogMelSpectrogram`, low to high."""
    max_freq = sample_rate / 2 if max_freq is None else max_freq
    edges = np.linspace(hertz_to_mel(min_freq), hertz_to_mel(max_freq), num_mel_bins + 2)
    return mel_to_hertz(edges[1:-1])


@keras.saving.register_keras_serializable(package="mmzoo")
class LogMelSpectrogram(keras.layers.Layer):
    """Raw waveforms to log-mel spectrograms, normalised per utterance, in the graph.

    For each frame of `frame_length` samples, `frame_step` apart (no padding:
    `frames = 1 + (samples - frame_length) // frame_step`), a periodic Hann
    window and a DFT of `fft_length` points (the frame zero-padded) give the
    power of each frequency bin, scaled so that a full-scale sine (amplitude
    1) has 0.25 in its bin. Triangular mel filters (Davis & Mermelstein 1980,
    "Comparison of parametric representations for monosyllabic word
    recognition in continuously spoken sentences", IEEE TASSP 28(4)) sum it
    into `num_mel_bins` bands from `min_freq` to `max_freq`, and the output
    is `ln(band power + log_offset)` (natural log; `log_offset=1e-6` is a
    floor 60 dB below a full-scale sine's bin, so digital silence is finite).

    `normalization="utterance"` then standardises each band over the frames of
    its own example (subtract the mean, divide by `sqrt(variance + 0.01)`):
    cepstral mean and variance normalisation, which removes the recording
    level and the microphone's colouring and needs no dataset statistics. The
    floor `0.01` (a standard deviation of 0.1, about 0.4 dB) keeps a constant
    band (silence) at 0 instead of amplifying rounding noise. Every example
    is normalised alone: no value depends on the rest of the batch.

    The STFT is a strided 1-D convolution with fixed DFT kernels (as
    `keras.layers.STFTSpectrogram` computes it), so the layer converts to
    TFLite builtin ops only. It has no weights: the kernels and filters are
    constants rebuilt from the config, and it computes in float32 whatever
    the global dtype policy (the logarithm of small powers needs it).

    Args:
        sample_rate: Hz of the input samples.
        frame_length: samples per analysis window (400 = 25 ms at 16 kHz).
        frame_step: samples between the starts of consecutive frames
            (160 = 10 ms at 16 kHz), at most `frame_length`.
        fft_length: DFT points, >= `frame_length`; default the next power of two.
        num_mel_bins: mel bands; every band must cover at least one DFT bin.
        min_freq: lower edge of the lowest band, Hz.
        max_freq: upper edge of the highest band, Hz, at most `sample_rate /
            2`; default `sample_rate / 2`.
        log_offset: added to each band's power before the logarithm.
        normalization: `"utterance"` or `None` (the log-mel values as they are).
        **kwargs: base `keras.layers.Layer` arguments.

    Input shape:
        `(batch, samples)` float32 waveforms in [-1, 1], `samples >= frame_length`.

    Output shape:
        `(batch, frames, num_mel_bins)` float32: natural-log band powers
        (power relative to full scale), or with `"utterance"` standard scores
        (dimensionless, mean 0 and variance about 1 per band and example).

    Example:
    >>> layer = LogMelSpectrogram(num_mel_bins=40)
    >>> layer(np.zeros((2, 16000), "float32")).shape   # 1 s at 16 kHz
    TensorShape([2, 98, 40])
    """

    VARIANCE_FLOOR = 0.01

    def __init__(self, sample_rate=SAMPLE_RATE, frame_length=400, frame_step=160,
                 fft_length=None, num_mel_bins=40, min_freq=20.0, max_freq=None,
                 log_offset=1e-6, normalization="utterance", **kwargs):
        # The logarithm of powers near log_offset needs float32 (float16's
        # smallest normal number is 6e-5), so it computes in float32 unless told.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for key, value in (("sample_rate", sample_rate), ("frame_length", frame_length),
                           ("frame_step", frame_step), ("num_mel_bins", num_mel_bins)):
            positive_int(key, value)
        if fft_length is None:
            fft_length = 2 ** math.ceil(math.log2(frame_length))
        if not (positive_int("fft_length", fft_length) >= frame_length):
            raise ValueError(f"`fft_length` must be at least `frame_length` ({frame_length}). "
                             f"Received: fft_length={fft_length}")
        if frame_step > frame_length:
            raise ValueError(f"`frame_step` must be at most `frame_length` ({frame_length}), "
                             f"or samples are skipped. Received: frame_step={frame_step}")
        nyquist = sample_rate / 2
        max_freq = nyquist if max_freq is None else max_freq
        if not (isinstance(min_freq, (int, float)) and isinstance(max_freq, (int, float))
                and 0 <= min_freq < max_freq <= nyquist):
            raise ValueError(f"The mel bands must lie in 0 <= min_freq < max_freq <= "
                             f"sample_rate / 2 = {nyquist:g} Hz. Received: min_freq={min_freq}, "
                             f"max_freq={max_freq}")
        if not (isinstance(log_offset, (int, float)) and log_offset > 0):
            raise ValueError(f"`log_offset` must be a positive number. Received: "
                             f"log_offset={log_offset!r}")
        NORMALIZATION("normalization", normalization)
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length)
        self.num_mel_bins = int(num_mel_bins)
        self.min_freq = float(min_freq)
        self.max_freq = float(max_freq)
        self.log_offset = float(log_offset)
        self.normalization = normalization
        filters = mel_filterbank(self.sample_rate, self.fft_length, self.num_mel_bins,
                                 self.min_freq, self.max_freq)
        empty = np.flatnonzero(filters.sum(axis=0) == 0)
        if len(empty):
            raise ValueError(
                f"With fft_length={self.fft_length} at {self.sample_rate} Hz (bins "
                f"{self.sample_rate / self.fft_length:g} Hz apart), {len(empty)} of the "
                f"{self.num_mel_bins} mel bands from {self.min_freq:g} to {self.max_freq:g} Hz "
                f"cover no DFT bin (the lowest are narrowest): use fewer bands, a higher "
                f"min_freq or a longer fft_length. Received: num_mel_bins={self.num_mel_bins}")
        self._kernel, self._filters = self._constants(filters)

    def _constants(self, filters):
        """DFT kernels `(frame_length, 1, 2 * bins)` and filters `(2 * bins, num_mel_bins)`."""
        n = np.arange(self.frame_length)[:, None]
        k = np.arange(self.fft_length // 2 + 1)[None, :]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.frame_length) / self.frame_length)
        # Divided by the window's sum: a full-scale sine has amplitude 1/2 in its bin.
        window = window / window.sum()
        angle = 2 * np.pi * n * k / self.fft_length
        kernel = np.concatenate([window[:, None] * np.cos(angle),
                                 -window[:, None] * np.sin(angle)], axis=1)
        # Squared real and imaginary parts summed by the same filters: one matmul.
        return (kernel[:, None, :].astype(np.float32),
                np.concatenate([filters, filters], axis=0).astype(np.float32))

    def num_frames(self, samples):
        """Frames of a waveform of `samples` samples (0 when shorter than one window)."""
        return 0 if samples < self.frame_length else \
            1 + (samples - self.frame_length) // self.frame_step

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # the checks, at build time
        self.built = True

    def call(self, inputs):
        x = ops.expand_dims(ops.cast(inputs, "float32"), -1)
        spectrum = ops.conv(x, ops.convert_to_tensor(self._kernel), strides=self.frame_step,
                            padding="valid")
        power = ops.matmul(ops.square(spectrum), ops.convert_to_tensor(self._filters))
        logmel = ops.log(power + self.log_offset)
        if self.normalization == "utterance":
            # The mean of values near the first frame's, plus that frame: log-mels
            # sit around -13 with a spread of ~0.4, and a float32 sum of 300 such
            # values loses digits that the division by the spread then magnifies
            # (LiteRT's MEAN adds in another order than TensorFlow's: 1e-4 apart on
            # a 7-sigma frame without the shift, float32 rounding with it).
            shift = logmel[:, :1, :]
            mean = shift + ops.mean(logmel - shift, axis=1, keepdims=True)
            variance = ops.mean(ops.square(logmel - mean), axis=1, keepdims=True)
            logmel = (logmel - mean) * ops.rsqrt(variance + self.VARIANCE_FLOOR)
        return ops.cast(logmel, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError("LogMelSpectrogram takes mono waveforms (batch, samples). "
                             f"Received: shape={tuple(input_shape)}")
        samples = input_shape[1]
        if samples is not None and samples < self.frame_length:
            raise ValueError(f"A waveform must hold at least one analysis window of "
                             f"{self.frame_length} samples. Received: shape="
                             f"{tuple(input_shape)}")
        frames = None if samples is None else self.num_frames(samples)
        return (input_shape[0], frames, self.num_mel_bins)

    def get_config(self):
        config = super().get_config()
        config.update({
            "sample_rate": self.sample_rate, "frame_length": self.frame_length,
            "frame_step": self.frame_step, "fft_length": self.fft_length,
            "num_mel_bins": self.num_mel_bins, "min_freq": self.min_freq,
            "max_freq": self.max_freq, "log_offset": self.log_offset,
            "normalization": self.normalization})
        return config


def front_end(audio_samples, audio_sample_rate, audio_mel_bins, audio_normalization, name):
    """The branches' input and log-mel front end: 25 ms Hann windows every 10 ms.

    Returns:
        `(inputs, logmel)`: the `"audio"` input `(batch, audio_samples)` and
        the layer's output `(batch, frames, audio_mel_bins)`.
    """
    positive_int("audio_samples", audio_samples)
    try:
        layer = LogMelSpectrogram(
            sample_rate=audio_sample_rate, frame_length=round(FRAME_SECONDS * audio_sample_rate),
            frame_step=round(STEP_SECONDS * audio_sample_rate), num_mel_bins=audio_mel_bins,
            normalization=audio_normalization, name=f"{name}_logmel")
    except ValueError as e:  # named by the build_model option
        raise ValueError(str(e).replace("Received: num_mel_bins=", "Received: audio_mel_bins=")
                         .replace("Received: normalization=", "Received: audio_normalization=")
                         ) from None
    if audio_samples < layer.frame_length:
        raise ValueError(
            f"The audio branches read 25 ms windows ({layer.frame_length} samples at "
            f"{audio_sample_rate} Hz): `audio_samples` must be at least {layer.frame_length}. "
            f"Received: audio_samples={audio_samples}")
    inputs = keras.Input(shape=(int(audio_samples),), dtype="float32", name="audio")
    return inputs, layer(inputs)


@AUDIO_BRANCHES.register("cnn", validators={
    **FRONT_END_VALIDATORS, "audio_filters": positive_int, "audio_blocks": positive_int,
    "audio_pooling": AUDIO_POOLING})
def audio_cnn_branch(audio_samples, *, audio_sample_rate=SAMPLE_RATE, audio_mel_bins=40,
                     audio_normalization="utterance", audio_filters=16, audio_blocks=3,
                     audio_pooling="avg", name="audio_cnn"):
    """Log-mel front end + a small 2-D CNN over (frames x mel bands), pooled to a vector.

    The log-mel spectrogram is read as a one-channel image (time by
    frequency), as in the CNN keyword spotters of Sainath & Parada (2015,
    "Convolutional neural networks for small-footprint keyword spotting") and
    the audio classifiers of Hershey et al. (2017, "CNN architectures for
    large-scale audio classification"): blocks of Conv2D(3x3) + BatchNorm +
    ReLU + MaxPool(2x2), block `i` with `audio_filters * 2**i` filters, each
    halving time and frequency (rounding up, so any number of blocks fits).

    Args:
        audio_samples: samples per waveform (48000 = 3 s at 16 kHz).
        audio_sample_rate: Hz of the waveforms (the preprocessor resamples to it).
        audio_mel_bins: mel bands of the front end.
        audio_normalization: `"utterance"` (each band standardised over
            time, per example) or `None` (see `LogMelSpectrogram`).
        audio_filters: filters of the first block.
        audio_blocks: number of blocks.
        audio_pooling: `"avg"` or `"max"` over the last map (time and
            frequency), or `"flatten"` (keeps where in time things happen;
            fixed-length waveforms only).
        name: the branch model's name.

    Returns:
        A `keras.Model` from float32 waveforms `(batch, audio_samples)` to
        `(batch, audio_filters * 2**(audio_blocks - 1))` (avg or max), or the
        flattened last map.
    """
    AUDIO_POOLING("audio_pooling", audio_pooling)
    inputs, logmel = front_end(audio_samples, audio_sample_rate, audio_mel_bins,
                               audio_normalization, name)
    frames, bands = logmel.shape[1], logmel.shape[2]
    x = keras.layers.Reshape((frames, bands, 1), name=f"{name}_image")(logmel)
    for i in range(audio_blocks):
        prefix = f"{name}_block{i + 1}"
        x = keras.layers.Conv2D(audio_filters * 2**i, 3, padding="same", use_bias=False,
                                name=f"{prefix}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool")(x)
    if audio_pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    elif audio_pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name=f"{name}_max_pool")(x)
    else:
        x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    return keras.Model(inputs, x, name=name)


@AUDIO_BRANCHES.register("gru", validators={
    **FRONT_END_VALIDATORS, "audio_units": positive_int, "audio_time_pool": positive_int})
def audio_gru_branch(audio_samples, *, audio_sample_rate=SAMPLE_RATE, audio_mel_bins=40,
                     audio_normalization="utterance", audio_units=128, audio_time_pool=4,
                     name="audio_gru"):
    """Log-mel front end + a GRU over the frames, reading the last state.

    The frames are first averaged `audio_time_pool` at a time (4: one step
    per 40 ms, about the length of a phone), which shortens the recurrence
    (3 s: 298 frames, 75 steps) for training on CPUs and for the unrolled
    TFLite file; then a GRU (Cho et al. 2014, "Learning phrase
    representations using RNN encoder-decoder for statistical machine
    translation") reads them in order, so the feature depends on word order
    over the whole utterance (the CNN branch only within its receptive field).
    Silence padded at the end of a short utterance is read like any frame.

    Args:
        audio_samples: samples per waveform (48000 = 3 s at 16 kHz).
        audio_sample_rate: Hz of the waveforms (the preprocessor resamples to it).
        audio_mel_bins: mel bands of the front end.
        audio_normalization: `"utterance"` or `None` (see `LogMelSpectrogram`).
        audio_units: GRU units (the size of the audio feature).
        audio_time_pool: frames averaged into one GRU step (1: every 10 ms frame).
        name: the branch model's name.

    Returns:
        A `keras.Model` from float32 waveforms `(batch, audio_samples)` to
        `(batch, audio_units)`.
    """
    inputs, x = front_end(audio_samples, audio_sample_rate, audio_mel_bins,
                          audio_normalization, name)
    if audio_time_pool > 1:
        x = keras.layers.AveragePooling1D(audio_time_pool, padding="same",
                                          name=f"{name}_time_pool")(x)
    x = keras.layers.GRU(audio_units, name=f"{name}_gru")(x)
    return keras.Model(inputs, x, name=name)


@AUDIO_BRANCHES.register("crnn", validators={
    **FRONT_END_VALIDATORS, "audio_filters": positive_int, "audio_blocks": positive_int,
    "audio_units": positive_int})
def audio_crnn_branch(audio_samples, *, audio_sample_rate=SAMPLE_RATE, audio_mel_bins=40,
                      audio_normalization="utterance", audio_filters=64, audio_blocks=2,
                      audio_units=128, name="audio_crnn"):
    """Log-mel front end + 1-D convolutions over time, then a GRU: a convolutional recurrent network.

    The CRNN of keyword spotting (Arik et al. 2017, "Convolutional recurrent
    neural networks for small-footprint keyword spotting"; the front of Deep
    Speech 2, Amodei et al. 2016): blocks of Conv1D over the frames (kernel
    5, the mel bands as channels) + BatchNorm + ReLU + MaxPool 2, block `i`
    with `audio_filters * 2**i` filters, find local sound patterns (two
    blocks see 130 ms) and halve time; a GRU then reads the remaining steps
    in order, so its last state depends on what was said and in which order
    ("is the red circle left of the blue square?" is not "is the blue square
    left of the red circle?"). With 2 blocks a 3 s waveform is 75 GRU steps
    of 40 ms. Convolving over time only (not time and frequency, as the
    `"cnn"` branch does) makes it about 2x cheaper to train on a CPU.

    Args:
        audio_samples: samples per waveform (48000 = 3 s at 16 kHz).
        audio_sample_rate: Hz of the waveforms (the preprocessor resamples to it).
        audio_mel_bins: mel bands of the front end.
        audio_normalization: `"utterance"` or `None` (see `LogMelSpectrogram`).
        audio_filters: filters of the first block.
        audio_blocks: number of convolution blocks.
        audio_units: GRU units (the size of the audio feature).
        name: the branch model's name.

    Returns:
        A `keras.Model` from float32 waveforms `(batch, audio_samples)` to
        `(batch, audio_units)`.
    """
    inputs, x = front_end(audio_samples, audio_sample_rate, audio_mel_bins,
                          audio_normalization, name)
    for i in range(audio_blocks):
        prefix = f"{name}_block{i + 1}"
        x = keras.layers.Conv1D(audio_filters * 2**i, 5, padding="same", use_bias=False,
                                name=f"{prefix}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
        x = keras.layers.MaxPooling1D(2, padding="same", name=f"{prefix}_pool")(x)
    x = keras.layers.GRU(audio_units, name=f"{name}_gru")(x)
    return keras.Model(inputs, x, name=name)
