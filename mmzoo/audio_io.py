"""Reading audio: WAV files, bytes and arrays to fixed-length 16 kHz mono float32.

mmzoo's audio models take a raw waveform of a fixed number of samples at a
fixed rate (16 kHz mono by default); everything a user may hold (a WAV path,
WAV bytes, an array at another rate, stereo, int16 PCM) is brought to that
here, on the host, with well-kept libraries: `soundfile` (libsndfile) reads
the files, `scipy.signal.resample_poly` resamples (a polyphase filter with a
Kaiser window, the standard band-limited resampler).

Example:

```python
from mmzoo.audio_io import load_audio, fit_length
wave = load_audio("question.wav", sample_rate=16000)   # (samples,) float32 in [-1, 1]
wave = fit_length(wave, 48000)                         # 3 s: zero-padded or trimmed
```
"""

import io
import math
import os
import re

import numpy as np

#: The rate mmzoo's audio models read unless an entry says otherwise.
SAMPLE_RATE = 16000


class AudioReadError(ValueError):
    """An audio file or byte string that cannot be read as audio."""


def read_audio(source):
    """Reads a WAV (or any libsndfile format) file or byte string.

    Args:
        source: a path (`str` or `os.PathLike`), or the file's bytes.

    Returns:
        `(wave, rate)`: float32 `(samples,)` in [-1, 1] (channels averaged
        to mono) and the file's sample rate in Hz.

    Raises:
        AudioReadError: the file does not exist or is not audio libsndfile
            reads (the message names it).
    """
    import soundfile

    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the given bytes"
    if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
        raise AudioReadError(f"No audio file at {name!r}. Received: {source!r}")
    try:
        data = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) \
            else source
        wave, rate = soundfile.read(data, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as e:
        # libsndfile names an in-memory file by its repr ("<_io.BytesIO object at 0x...>").
        reason = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(e))
        raise AudioReadError(f"Could not read {name} as audio (WAV, FLAC or OGG): {reason}") \
            from None
    return wave.mean(axis=1).astype(np.float32), int(rate)


def resample(wave, rate, target_rate=SAMPLE_RATE):
    """Resamples a 1-D waveform from `rate` to `target_rate` Hz (band-limited).

    Args:
        wave: `(samples,)` array.
        rate: its sample rate in Hz, > 0.
        target_rate: the wanted rate in Hz, > 0.

    Returns:
        float32 `(round(samples * target_rate / rate),)`; `wave` itself (as
        float32) when the rates agree.
    """
    from scipy.signal import firwin, resample_poly

    for key, value in (("rate", rate), ("target_rate", target_rate)):
        if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                and value > 0):
            raise ValueError(f"`{key}` must be a positive integer (Hz). Received: {key}={value!r}")
    wave = np.asarray(wave, np.float32)
    if rate == target_rate:
        return wave
    g = math.gcd(int(rate), int(target_rate))
    up, down = int(target_rate) // g, int(rate) // g
    taps = _FILTERS.get((up, down))
    if taps is None:  # scipy's own default design (Kaiser, beta 5, 10 zero-crossings), once
        half = 10 * max(up, down)
        taps = _FILTERS[(up, down)] = firwin(2 * half + 1, 1.0 / max(up, down),
                                             window=("kaiser", 5.0))
    return resample_poly(wave, up, down, window=taps).astype(np.float32)


# Polyphase filters by (up, down): designing one costs more than resampling a
# short clip with it.
_FILTERS = {}


def fit_length(wave, samples):
    """Zero-pads (at the end) or trims a waveform to exactly `samples` samples."""
    wave = np.asarray(wave, np.float32)
    if len(wave) >= samples:
        return wave[:samples]
    return np.pad(wave, (0, samples - len(wave)))


def load_audio(source, sample_rate=SAMPLE_RATE, samples=None, source_rate=None):
    """One waveform from a path, WAV bytes or an array, at `sample_rate`, optionally fixed-length.

    Args:
        source: a file path, the file's bytes, or an array `(samples,)` or
            `(samples, channels)` (float in [-1, 1], or integer PCM, scaled
            by its dtype's range).
        sample_rate: the rate to return, in Hz.
        samples: the length to pad or trim to, or `None` to keep it.
        source_rate: the rate of an array `source` (default `sample_rate`);
            files carry their own.

    Returns:
        float32 `(samples,)`.

    Raises:
        AudioReadError: an unreadable file or bytes.
        ValueError: an array that is not 1-D or 2-D, or bad rates.
    """
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        wave, rate = read_audio(source)
    else:
        array = np.asarray(source)
        if array.ndim not in (1, 2) or array.size == 0:
            raise ValueError("An audio array must be (samples,) or (samples, channels) and "
                             f"not empty. Received: shape {array.shape}")
        if np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
        array = array.astype(np.float32)
        wave = array if array.ndim == 1 else array.mean(axis=1)
        rate = sample_rate if source_rate is None else source_rate
    wave = resample(wave, rate, sample_rate)
    return wave if samples is None else fit_length(wave, samples)


def model_sample_rate(model):
    """The rate (Hz) of a model's `"audio"` input: its `audio_sample_rate` build option.

    Models built by `mmzoo.build_model` record it (default `SAMPLE_RATE`);
    other models are taken to read `SAMPLE_RATE`.
    """
    options = getattr(model, "build_options", None) or {}
    return int(options.get("audio_sample_rate", SAMPLE_RATE))
