"""Spoken mmzoo-shapes: the questions and captions of scenes, read aloud by espeak-ng.

Speech is synthesised with espeak-ng (the Debian package `espeak-ng`; install
it with `apt-get install espeak-ng`), a formant synthesiser: ~13 ms of CPU an
utterance (~75 a second on one core), deterministic, many voices and accents.
So that a model cannot key on one voice, every example varies:

- the **speaker**: one of the `VOICES`, an espeak-ng accent with a voice
  variant (male, female, creaky, Klatt synthesis). `TRAIN_VOICES` are for
  training; `HELD_OUT_VOICES` (other accents and variants) never appear with
  `voices="train"` and measure how a model does on speakers it never heard;
- the **speaking rate and pitch**, drawn from the voice's ranges;
- the **level** (-28 to -18 dBFS RMS), the **onset** (0-0.25 s of silence
  first) and **background noise** (white, pink, brown or band-limited, at an
  SNR of 10-30 dB by default).

Everything is decided by `(seed, split, scene_id)`, so the same scene always
sounds the same. The questions are templated (`question_texts()`: 3,888
distinct strings), so synthesis is cached: each (text, voice) is spoken in
`renditions` fixed versions (rate and pitch drawn per rendition, quantised),
kept in memory and on disk (`SpeechCache`, under `$MMZOO_SPEECH_CACHE`, else
`$MMZOO_HOME/speech`, else `~/.cache/mmzoo/speech`); a stream of fresh scenes
then reuses them and adds only fresh level, onset and noise per example.
Captions are far more varied (most are unique) and are synthesised as they come.

Example:

```python
from mmzoo.data import shapes, speech
data = shapes.generate_scenes(8, split="test", image_size=32)
audio, voice = speech.spoken_questions(data, split="test", voices="all")
audio.shape, audio.dtype        # (8, 48000) float32: 3 s at 16 kHz
speech.VOICE_NAMES[voice[0]]    # e.g. 'gb_f4'
wave = speech.synthesize("is there a red circle?", voice="sc_m7")
```
"""

import collections
import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
import threading

import numpy as np

from mmzoo import audio_io
from mmzoo.data import shapes

#: The synthesiser's executable, looked up on PATH.
ESPEAK = "espeak-ng"
#: The rate everything here returns unless told otherwise (the audio modality's).
SAMPLE_RATE = audio_io.SAMPLE_RATE
#: Default length of a spoken question: 3 s at 16 kHz; the longest question at
#: the slowest rate of the slowest voice lasts 2.86 s (measured, see `VOICES`).
QUESTION_SAMPLES = 48000
#: Default length of a spoken caption: 10 s at 16 kHz (99% of match captions
#: fit; longer ones lose their end).
CAPTION_SAMPLES = 160000
#: Noise colours drawn per example.
NOISE_COLOURS = ("white", "pink", "brown", "band")
#: Default signal-to-noise range in dB (speech RMS over the utterance / noise RMS).
SNR_DB = (10.0, 30.0)
#: Default level range of the speech, dB relative to full scale (RMS).
LEVEL_DBFS = (-28.0, -18.0)
#: Most silence put before the speech, in seconds.
MAX_ONSET = 0.25
_CACHE_FORMAT = "v1"


class EspeakNotFoundError(RuntimeError):
    """espeak-ng, which spoken mmzoo-shapes needs, is not installed."""


class SpeechSynthesisError(RuntimeError):
    """espeak-ng ran but failed (bad voice, crashed)."""


@dataclasses.dataclass(frozen=True)
class Voice:
    """One speaker: an espeak-ng voice with a variant, and its rate and pitch ranges.

    Attributes:
        name: mmzoo's id of the speaker (e.g. `"us_m1"`).
        espeak: the espeak-ng `-v` argument, language + variant (`"en-us+m1"`).
        rate: (slowest, fastest) words per minute (espeak-ng `-s`).
        pitch: (lowest, highest) espeak-ng pitch, 0-99 (`-p`; 50 is the voice's own).
        held_out: kept out of training (`voices="train"` never draws it).
        description: in words.
    """

    name: str
    espeak: str
    rate: tuple
    pitch: tuple
    held_out: bool
    description: str


# Rates: espeak-ng's default is 175 wpm. Each voice's slowest rate is set so
# that the longest questions ("is the orange triangle to the left of the
# purple triangle?") last at most 2.86 s after trimming (measured for every
# voice at its slowest rate and lowest pitch), so every question fits 3 s.
# Accents differ in tempo (the Caribbean one is ~10 % slower), hence the ranges.
VOICES = (
    Voice("us_m1", "en-us+m1", (185, 240), (35, 60), False, "American English, male"),
    Voice("us_f2", "en-us+f2", (190, 245), (40, 70), False, "American English, female"),
    Voice("gb_m3", "en-gb+m3", (185, 240), (30, 55), False, "British English, male"),
    Voice("gb_f4", "en-gb+f4", (185, 240), (40, 70), False, "British English, female"),
    Voice("sc_m7", "en-gb-scotland+m7", (180, 235), (35, 60), False, "Scottish English, male"),
    Voice("rp_f1", "en-gb-x-rp+f1", (185, 240), (40, 70), False,
          "Received Pronunciation, female"),
    Voice("ca_m2", "en-029+m2", (210, 265), (35, 60), False, "Caribbean English, male"),
    Voice("us_klatt", "en-us+klatt", (180, 235), (35, 65), False,
          "American English, Klatt synthesis"),
    # Held out: accents and variants that no training voice has.
    Voice("wm_f3", "en-gb-x-gbcwmd+f3", (195, 250), (40, 70), True,
          "West Midlands English, female"),
    Voice("lan_m6", "en-gb-x-gbclan+m6", (190, 245), (30, 55), True,
          "Lancaster English, male"),
    Voice("sc_f5", "en-gb-scotland+f5", (190, 245), (40, 70), True, "Scottish English, female"),
    Voice("us_croak", "en-us+croak", (185, 240), (35, 60), True, "American English, creaky"),
)
#: Every voice name; a `voice` id is an index into it (training voices first).
VOICE_NAMES = tuple(v.name for v in VOICES)
TRAIN_VOICES = tuple(v.name for v in VOICES if not v.held_out)
HELD_OUT_VOICES = tuple(v.name for v in VOICES if v.held_out)
_VOICE_SETS = {"train": TRAIN_VOICES, "held_out": HELD_OUT_VOICES, "all": VOICE_NAMES}
_BY_NAME = {v.name: v for v in VOICES}
# Rendition rates and pitches are quantised to this step (bounded cache keys).
_STEP = 5


def voice_names(voices="train"):
    """The voice names of a set: `"train"`, `"held_out"`, `"all"`, or a list of names."""
    if isinstance(voices, str) and voices in _VOICE_SETS:
        return _VOICE_SETS[voices]
    if not isinstance(voices, str) and isinstance(voices, (list, tuple)) and voices \
            and all(isinstance(v, str) and v in _BY_NAME for v in voices):
        return tuple(voices)
    raise ValueError("`voices` must be 'train', 'held_out', 'all' or a non-empty list of "
                     f"names from {VOICE_NAMES}. Received: voices={voices!r}")


def get_voice(voice):
    """The `Voice` named `voice` (or `voice` itself)."""
    if isinstance(voice, Voice):
        return voice
    if isinstance(voice, str) and voice in _BY_NAME:
        return _BY_NAME[voice]
    raise ValueError(f"Unknown voice. Expected one of {VOICE_NAMES}. Received: voice={voice!r}")


# ----------------------------------------------------------------------------
# espeak-ng


def espeak_path():
    """The espeak-ng executable's path.

    Raises:
        EspeakNotFoundError: it is not on PATH (the message says how to install it).
    """
    path = shutil.which(ESPEAK)
    if path is None:
        raise EspeakNotFoundError(
            "Spoken mmzoo-shapes is synthesised with espeak-ng, which is not installed (no "
            f"{ESPEAK!r} on PATH). Install the Debian/Ubuntu package `espeak-ng`: "
            "`sudo apt-get install espeak-ng` (macOS: `brew install espeak-ng`; Fedora: "
            "`sudo dnf install espeak-ng`). Speech already in the cache "
            "(mmzoo.data.speech.SpeechCache) is used without it. "
            f"Received: executable={ESPEAK!r}")
    return path


def espeak_version():
    """espeak-ng's version line, e.g. `'eSpeak NG text-to-speech: 1.51 ...'`."""
    out = subprocess.run([espeak_path(), "--version"], capture_output=True, check=False)
    return out.stdout.decode(errors="replace").strip()


def _resample(wave, rate, target):
    from mmzoo.audio_io import resample

    return resample(wave, rate, target)


def _trim(wave, threshold=1e-3, pad=160):
    """Cuts the silence espeak-ng puts before and after the speech (keeps `pad` samples)."""
    loud = np.flatnonzero(np.abs(wave) > threshold)
    if loud.size == 0:
        return wave[:0]
    return wave[max(loud[0] - pad, 0): loud[-1] + 1 + pad]


def synthesize(text, voice="us_m1", rate=None, pitch=None, sample_rate=SAMPLE_RATE, trim=True):
    """Speaks `text` with espeak-ng.

    Args:
        text: what to say (plain text; punctuation shapes the intonation).
        voice: a name from `VOICE_NAMES`, a `Voice`, or any espeak-ng `-v`
            argument (`"en-us+f3"`).
        rate: words per minute (espeak-ng `-s`, 80-450); default: the
            middle of the voice's range (175 for a raw espeak-ng voice).
        pitch: 0-99 (espeak-ng `-p`); default: the middle of the voice's range (50).
        sample_rate: the rate to return, in Hz.
        trim: cut the leading and trailing silence.

    Returns:
        float32 `(samples,)` in [-1, 1], mono, at `sample_rate`.

    Raises:
        EspeakNotFoundError: espeak-ng is not installed.
        SpeechSynthesisError: espeak-ng failed (e.g. an unknown voice).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"`text` must be a non-empty string. Received: text={text!r}")
    if isinstance(voice, str) and voice not in _BY_NAME:
        if not voice or voice.startswith("-") or any(c.isspace() for c in voice):
            raise ValueError(f"Unknown voice. Expected one of {VOICE_NAMES} or an espeak-ng "
                             f"voice such as 'en-us+f3'. Received: voice={voice!r}")
        espeak, default_rate, default_pitch = voice, 175, 50
    else:
        v = get_voice(voice)
        espeak = v.espeak
        default_rate, default_pitch = sum(v.rate) // 2, sum(v.pitch) // 2
    rate = default_rate if rate is None else rate
    pitch = default_pitch if pitch is None else pitch
    for key, value, lo, hi in (("rate", rate, 80, 450), ("pitch", pitch, 0, 99)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
                or not lo <= value <= hi:
            raise ValueError(f"`{key}` must be an integer in [{lo}, {hi}]. "
                             f"Received: {key}={value!r}")
    # Text on stdin, not argv: no option parsing of the text, no shell.
    args = [espeak_path(), "--stdout", "-v", espeak, "-s", str(int(rate)), "-p", str(int(pitch)),
            "--stdin"]
    try:
        out = subprocess.run(args, input=text.encode("utf-8"), capture_output=True,
                             check=False, timeout=60)
    except FileNotFoundError:  # removed between the lookup and the run
        espeak_path()
        raise
    if out.returncode != 0 or len(out.stdout) <= 44:
        raise SpeechSynthesisError(
            f"espeak-ng failed (exit status {out.returncode}): "
            f"{out.stderr.decode(errors='replace').strip() or 'no audio written'}. "
            f"Received: voice={espeak!r}, rate={rate}, pitch={pitch}")
    wave, rate_hz = audio_io.read_audio(out.stdout)
    if trim:
        wave = _trim(wave)
    return _resample(wave, rate_hz, sample_rate)


# ----------------------------------------------------------------------------
# The texts


def question_texts():
    """Every question the mmzoo-shapes generator can ask (3,888), sorted.

    Spelled out from the generator's templates, so that a cache can be filled
    ahead of training (`SpeechCache.fill`).
    """
    s = shapes
    out = set()

    def sized(things):  # with and without a size word
        return [f"{z} {t}" for z in s.SIZES for t in things] + list(things)

    for target in sized(s.SHAPES):
        out.add(f"what colour is the {target}?")
        out.add(f"what is the colour of the {target}?")
    for target in sized(s.COLOURS):
        out.add(f"what shape is the {target} object?")
        out.add(f"what is the shape of the {target} object?")
    out.add("how many objects are there?")
    for c in s.COLOURS:
        out.add(f"how many {c} objects are there?")
        for p in s.SHAPE_PLURALS:
            out.add(f"how many {c} {p} are there?")
    for p in s.SHAPE_PLURALS:
        out.add(f"how many {p} are there?")
    for words in sized(s.COLOURS):
        for shape, plural in zip(s.SHAPES, s.SHAPE_PLURALS):
            out.add(f"is there {s._a(words)} {shape}?")
            out.add(f"are there any {words} {plural}?")
    pairs = [f"{c} {sh}" for c in s.COLOURS for sh in s.SHAPES]
    for ref in pairs:
        for near in ("nearest", "closest"):
            out.add(f"what shape is {near} to the {ref}?")
            out.add(f"what colour is the object {near} to the {ref}?")
        for other in pairs:
            if other != ref:
                for phrase in s._RELATION_PHRASES.values():
                    out.add(f"is the {ref} {phrase} the {other}?")
    return sorted(out)


# ----------------------------------------------------------------------------
# The cache


def default_cache_dir():
    """`$MMZOO_SPEECH_CACHE`, else `$MMZOO_HOME/speech`, else `~/.cache/mmzoo/speech`."""
    if os.environ.get("MMZOO_SPEECH_CACHE"):
        return pathlib.Path(os.environ["MMZOO_SPEECH_CACHE"]).expanduser()
    home = os.environ.get("MMZOO_HOME") or "~/.cache/mmzoo"
    return pathlib.Path(home).expanduser() / "speech"


def rendition(text, voice, index, renditions):
    """`(rate, pitch)` of rendition `index` (of `renditions`) of `text` by `voice`.

    Rendition `i` takes its rate from the `i`-th of `renditions` equal slices
    of the voice's rate range (so a text is heard both slower and faster) and
    its pitch from the whole pitch range, each drawn from a hash of the text
    and quantised to steps of 5 (bounded cache keys).
    """
    v = get_voice(voice)
    if not 0 <= index < renditions:
        raise ValueError(f"`index` must be in [0, {renditions}). Received: index={index!r}")
    digest = hashlib.blake2b(f"{text}\0{v.name}\0{index}".encode(), digest_size=8).digest()
    u_rate = int.from_bytes(digest[:4], "little") / 2**32
    u_pitch = int.from_bytes(digest[4:], "little") / 2**32
    lo, hi = v.rate
    width = (hi - lo) / renditions
    rate = lo + index * width + u_rate * width
    pitch = v.pitch[0] + u_pitch * (v.pitch[1] - v.pitch[0])
    rate = min(max(_STEP * round(rate / _STEP), lo), hi)
    pitch = min(max(_STEP * round(pitch / _STEP), v.pitch[0]), v.pitch[1])
    return int(rate), int(pitch)


class SpeechCache:
    """Synthesised utterances, keyed by (text, voice, rate, pitch), in memory and on disk.

    Each (text, voice) has `renditions` versions (`rendition`), so the cache
    holds at most `len(texts) * len(voices) * renditions` utterances. On disk
    each is one FLAC file (16-bit, lossless) at `sample_rate`, silence
    trimmed: ~41 KB a question on average, ~2.5 GB for every question by the
    8 training voices in 2 renditions (`fill()`; delete the folder to clear
    it). In memory, the most recently used ones up to `memory_mb` (int16).

    Args:
        cache_dir: the folder; `None`: `default_cache_dir()`; `False`: memory only.
        sample_rate: the rate of the stored utterances.
        renditions: versions of each (text, voice), >= 1.
        memory_mb: the in-memory part's size.
        workers: espeak-ng processes run at once when several utterances are missing.

    Attributes:
        synthesized: utterances this cache had espeak-ng speak.
        disk_hits, memory_hits: utterances found on disk / in memory.
    """

    def __init__(self, cache_dir=None, sample_rate=SAMPLE_RATE, renditions=2, memory_mb=512,
                 workers=None):
        if not isinstance(renditions, int) or isinstance(renditions, bool) or renditions < 1:
            raise ValueError(f"`renditions` must be an integer >= 1. Received: "
                             f"renditions={renditions!r}")
        self.sample_rate = int(sample_rate)
        self.renditions = renditions
        if cache_dir is False:
            self.path = None
        else:
            root = default_cache_dir() if cache_dir is None else pathlib.Path(cache_dir)
            self.path = root.expanduser() / f"{_CACHE_FORMAT}-{self.sample_rate}hz"
        self.memory_bytes = int(memory_mb * 2**20)
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._memory = collections.OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self.synthesized = self.disk_hits = self.memory_hits = 0

    def key(self, text, voice, index):
        """`(text, voice name, rate, pitch)` of rendition `index`."""
        rate, pitch = rendition(text, voice, index, self.renditions)
        return (text, get_voice(voice).name, rate, pitch)

    def _file(self, key):
        text, name, rate, pitch = key
        digest = hashlib.sha1(f"{text}\0{get_voice(name).espeak}\0{rate}\0{pitch}".encode())
        return self.path / name / f"{digest.hexdigest()[:20]}.flac"

    def _remember(self, key, pcm):
        with self._lock:
            if key in self._memory:
                return
            self._memory[key] = pcm
            self._held += pcm.nbytes
            while self._held > self.memory_bytes and len(self._memory) > 1:
                _, old = self._memory.popitem(last=False)
                self._held -= old.nbytes

    def _lookup(self, key):
        with self._lock:
            pcm = self._memory.get(key)
            if pcm is not None:
                self._memory.move_to_end(key)
                self.memory_hits += 1
                return pcm
        if self.path is not None:
            import soundfile

            try:
                pcm, _ = soundfile.read(self._file(key), dtype="int16")
            except (OSError, RuntimeError, soundfile.LibsndfileError):
                return None  # not there (or half-written by a killed process): synthesise it
            self.disk_hits += 1
            self._remember(key, pcm)
            return pcm
        return None

    def _synthesize(self, key):
        text, name, rate, pitch = key
        wave = synthesize(text, name, rate, pitch, sample_rate=self.sample_rate)
        pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)
        with self._lock:
            self.synthesized += 1
        if self.path is not None:
            target = self._file(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            import soundfile

            tmp = target.with_name(f"{target.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
            soundfile.write(tmp, pcm, self.sample_rate, format="FLAC", subtype="PCM_16")
            os.replace(tmp, target)  # atomic: a reader never sees half a file
        self._remember(key, pcm)
        return pcm

    def get_many(self, keys):
        """int16 PCM of each key, synthesising the missing ones `workers` at a time."""
        found = [self._lookup(k) for k in keys]
        missing = list(dict.fromkeys(k for k, pcm in zip(keys, found) if pcm is None))
        if missing:
            if self.workers > 1 and len(missing) > 1:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(self.workers) as pool:
                    made = dict(zip(missing, pool.map(self._synthesize, missing)))
            else:
                made = {k: self._synthesize(k) for k in missing}
            found = [made[k] if pcm is None else pcm for k, pcm in zip(keys, found)]
        return found

    def get(self, text, voice, index=0):
        """int16 PCM `(samples,)` of rendition `index` of `text` by `voice`."""
        return self.get_many([self.key(text, voice, index)])[0]

    def fill(self, texts=None, voices="train", progress=False, chunk=256):
        """Synthesises every rendition of `texts` (default: all questions) by `voices`.

        Returns:
            How many utterances were synthesised (those already cached are skipped).
        """
        texts = question_texts() if texts is None else list(texts)
        keys = [self.key(t, v, r) for v in voice_names(voices) for t in texts
                for r in range(self.renditions)]
        before = self.synthesized
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(keys), desc="spoken questions", unit=" utterances")
        for start in range(0, len(keys), chunk):
            part = keys[start:start + chunk]
            if self.path is not None:  # don't pull what is on disk into memory
                part = [k for k in part if k not in self._memory and not self._file(k).exists()]
            self.get_many(part)
            if bar is not None:
                bar.update(min(chunk, len(keys) - start))
        if bar is not None:
            bar.close()
        return self.synthesized - before

    def disk_usage(self):
        """`(files, bytes)` of the on-disk cache."""
        if self.path is None or not self.path.exists():
            return 0, 0
        sizes = [p.stat().st_size for p in self.path.rglob("*.flac")]
        return len(sizes), sum(sizes)


_DEFAULT_CACHES = {}


def default_memory_mb():
    """`$MMZOO_SPEECH_MEMORY_MB` (an integer >= 0), else 512: the default cache's memory part.

    Every question by the 8 training voices in 2 renditions is ~3.8 GB as
    int16: with 4096 a long spoken training run reads each from disk once.

    Raises:
        ValueError: the variable is set to something else (named).
    """
    value = os.environ.get("MMZOO_SPEECH_MEMORY_MB", "").strip()
    if not value:
        return 512
    if not value.isdigit():
        raise ValueError(f"MMZOO_SPEECH_MEMORY_MB must be an integer >= 0 (megabytes). "
                         f"Received: MMZOO_SPEECH_MEMORY_MB={value!r}")
    return int(value)


def default_cache(sample_rate=SAMPLE_RATE):
    """The shared `SpeechCache` at `default_cache_dir()` (one per folder and rate).

    Its memory part holds `default_memory_mb()` megabytes.
    """
    key = (str(default_cache_dir()), int(sample_rate), default_memory_mb())
    if key not in _DEFAULT_CACHES:
        _DEFAULT_CACHES[key] = SpeechCache(sample_rate=sample_rate, memory_mb=key[2])
    return _DEFAULT_CACHES[key]


# ----------------------------------------------------------------------------
# Examples: voice, level, onset and noise per scene


def _noise_bank(sample_rate, length, clips=8):
    """Unit-RMS noise clips of each colour (fixed seed), `(colours, clips, length)` float32."""
    key = (sample_rate, length, clips)
    bank = _NOISE_BANKS.get(key)
    if bank is not None:
        return bank
    rng = np.random.default_rng(20261130)
    white = rng.standard_normal((len(NOISE_COLOURS), clips, length))
    f = np.maximum(np.fft.rfftfreq(length, 1.0 / sample_rate), 1.0)
    audible = f >= 50.0  # no sub-audible rumble: it would carry the power but not mask speech
    shaping = {
        "white": audible * 1.0,
        "pink": audible / np.sqrt(f),  # 1/f power
        "brown": audible / f,  # 1/f^2 power
        "band": ((f > 200) & (f < 2000)) * 1.0,  # a murmur in the speech band
    }
    bank = np.empty(white.shape, np.float32)
    for i, colour in enumerate(NOISE_COLOURS):
        shaped = np.fft.irfft(np.fft.rfft(white[i], axis=-1) * shaping[colour], n=length, axis=-1)
        shaped -= shaped.mean(axis=-1, keepdims=True)
        bank[i] = shaped / np.sqrt(np.mean(shaped ** 2, axis=-1, keepdims=True))
    _NOISE_BANKS[key] = bank
    return bank


_NOISE_BANKS = {}


def _example_rng(seed, split, scene_id, kind):
    digest = hashlib.blake2b(f"mmzoo-speech:{seed}:{split}:{int(scene_id)}:{kind}".encode(),
                             digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _check_range(name, value, lo, hi):
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
            or not lo <= value[0] <= value[1] <= hi):
        raise ValueError(f"`{name}` must be a (low, high) pair within [{lo}, {hi}]. "
                         f"Received: {name}={value!r}")


def speak(texts, scene_ids, split, seed=0, kind="question", sample_rate=SAMPLE_RATE,
          samples=QUESTION_SAMPLES, voices="train", snr_db=SNR_DB, level_dbfs=LEVEL_DBFS,
          cache=None):
    """Speaks `texts`, one example per (text, scene id), deterministically.

    Each example's voice, rendition, level, onset, noise colour, noise clip
    and SNR are drawn from `(seed, split, scene_id, kind)`.

    Args:
        texts: the strings to speak.
        scene_ids: one id per text (the scene's `scene_id`).
        split: the scenes' split (part of the seed).
        seed: the dataset seed.
        kind: what is spoken (part of the seed): `"question"`, `"caption"`, ...
        sample_rate: the rate of the result, in Hz.
        samples: the fixed length; speech is zero-padded after, or its end trimmed.
        voices: `"train"`, `"held_out"`, `"all"` or a list of voice names.
        snr_db: (low, high) signal-to-noise ratio in dB, drawn uniformly;
            `None`: no noise.
        level_dbfs: (low, high) RMS level of the speech in dBFS, drawn uniformly.
        cache: a `SpeechCache` (default: `default_cache(sample_rate)`).

    Returns:
        `(audio, voice)`: float32 `(N, samples)` in [-1, 1], and int64 `(N,)`
        indices into `VOICE_NAMES`.
    """
    names = voice_names(voices)
    texts = [str(t) for t in texts]
    scene_ids = [int(i) for i in np.asarray(scene_ids).reshape(-1)]
    if len(texts) != len(scene_ids):
        raise ValueError(f"`texts` and `scene_ids` must have the same length. Received: "
                         f"{len(texts)} texts and {len(scene_ids)} scene ids")
    if not isinstance(samples, (int, np.integer)) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"`samples` must be a positive integer. Received: samples={samples!r}")
    if snr_db is not None:
        _check_range("snr_db", snr_db, -20, 100)
    _check_range("level_dbfs", level_dbfs, -80, 0)
    cache = default_cache(sample_rate) if cache is None else cache
    if cache.sample_rate != sample_rate:
        raise ValueError(f"The cache holds {cache.sample_rate} Hz audio. "
                         f"Received: sample_rate={sample_rate!r}")
    n = len(texts)
    draws, keys = [], []
    for text, scene_id in zip(texts, scene_ids):
        rng = _example_rng(seed, split, scene_id, kind)
        name = names[rng.integers(len(names))]
        keys.append(cache.key(text, name, int(rng.integers(cache.renditions))))
        draws.append((name, rng))
    pcms = cache.get_many(keys)
    bank = _noise_bank(sample_rate, 2 * samples) if snr_db is not None else None
    audio = np.zeros((n, samples), np.float32)
    voice = np.empty(n, np.int64)
    max_onset = int(MAX_ONSET * sample_rate)
    for i, ((name, rng), pcm) in enumerate(zip(draws, pcms)):
        voice[i] = VOICE_NAMES.index(name)
        wave = pcm.astype(np.float32)
        rms = float(np.sqrt(np.mean(wave * wave))) if wave.size else 0.0
        level = 10.0 ** (rng.uniform(*level_dbfs) / 20.0)
        onset = int(rng.integers(min(max_onset, max(samples - len(wave), 0)) + 1))
        length = min(len(wave), samples - onset)
        if rms > 0:
            audio[i, onset:onset + length] = wave[:length] * (level / rms)
        if bank is not None:
            snr = rng.uniform(*snr_db)
            colour, clip = rng.integers(len(NOISE_COLOURS)), rng.integers(bank.shape[1])
            start = int(rng.integers(bank.shape[2] - samples + 1))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            noise = bank[colour, clip, start:start + samples]
            # The clip's own RMS, so that the SNR holds for this excerpt.
            gain = sign * level * 10.0 ** (-snr / 20.0) / float(np.sqrt(np.mean(noise * noise)))
            audio[i] += noise * gain
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio, voice


def _data_texts(data, field):
    if isinstance(data, dict):
        return list(data[field]), data["scene_id"]
    scenes = list(data)  # a list of `shapes.Scene`
    return [getattr(s, field) for s in scenes], [s.scene_id for s in scenes]


def spoken_questions(data, split, seed=0, sample_rate=SAMPLE_RATE, samples=QUESTION_SAMPLES,
                     voices="train", **kwargs):
    """The questions of scenes, spoken (see `speak` for every option).

    Args:
        data: a `shapes.generate_scenes` / `stream_scenes` dict, or a list of `Scene`s.
        split: the scenes' split; use `voices="train"` for training and
            `"all"` (or `"held_out"`) to report per voice.
        seed: the dataset seed.
        sample_rate, samples: rate and fixed length of the result.
        voices: `"train"`, `"held_out"`, `"all"` or a list of voice names.
        **kwargs: `snr_db`, `level_dbfs`, `cache` (see `speak`).

    Returns:
        `(audio, voice)`: float32 `(N, samples)`, int64 `(N,)` indices into `VOICE_NAMES`.
    """
    texts, ids = _data_texts(data, "question")
    return speak(texts, ids, split, seed, "question", sample_rate, samples, voices, **kwargs)


def spoken_captions(data, split, seed=0, field="match_caption", sample_rate=SAMPLE_RATE,
                    samples=CAPTION_SAMPLES, voices="train", **kwargs):
    """A caption of each scene, spoken (`match_caption` by default, for image-audio matching).

    Captions are rarely repeated, so they are synthesised as they come
    (~60 a second per core) and kept in memory only (64 MB, one rendition
    per voice) unless `cache` is given; `samples` defaults to 10 s.

    Args:
        field: `"match_caption"` (the caption/is-true pair's caption).
        Other arguments: as `spoken_questions`.

    Returns:
        `(audio, voice)` as `spoken_questions`.
    """
    if field != "match_caption":
        raise ValueError(f"`field` must be 'match_caption'. Received: field={field!r}")
    texts, ids = _data_texts(data, field)
    if kwargs.get("cache") is None:
        # Most captions are unique: keep them off the disk cache.
        key = ("captions", int(sample_rate))
        if key not in _DEFAULT_CACHES:
            _DEFAULT_CACHES[key] = SpeechCache(False, sample_rate, renditions=1, memory_mb=64)
        kwargs["cache"] = _DEFAULT_CACHES[key]
    return speak(texts, ids, split, seed, "caption", sample_rate, samples, voices, **kwargs)


def to_pcm16(audio):
    """float32 audio in [-1, 1] as int16 PCM (what the TFDS config stores: half the bytes)."""
    return np.round(np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)
