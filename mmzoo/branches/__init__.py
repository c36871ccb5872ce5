"""Modality encoders ("branches"), each a reusable functional `keras.Model`.

Look them up by name with `IMAGE_BRANCHES.get(name).builder` (`TEXT_BRANCHES`,
`AUDIO_BRANCHES`) or call the functions directly; register new ones with
`IMAGE_BRANCHES.register(name, validators={...})` (see `mmzoo.registry`).
Registration info: `input_dtype` (a text branch's input dtype) and
`loads_in_safe_mode=False` for a branch whose models cannot load with
`safe_mode=True` (`"tfhub"`: a SavedModel may run any op), which
`tests/test_conformance.py` then checks.
"""

from mmzoo.branches.audio import LogMelSpectrogram, audio_cnn_branch, audio_gru_branch
from mmzoo.branches.hub import HubModule, tfhub_branch
from mmzoo.branches.image import VGGPreprocessing, cnn_branch, convnet_branch, vgg16_branch
from mmzoo.branches.text import (cnn_text_branch, dense_branch, embedding_branch, gru_branch,
                                  lstm_branch)
from mmzoo.registry import AUDIO_BRANCHES, IMAGE_BRANCHES, TEXT_BRANCHES

__all__ = [
    "IMAGE_BRANCHES",
    "TEXT_BRANCHES",
    "VGGPreprocessing",
    "cnn_branch",
    "convnet_branch",
    "vgg16_branch",
    "HubModule",
    "tfhub_branch",
    "lstm_branch",
    "cnn_text_branch",
    "gru_branch",
    "embedding_branch",
    "dense_branch",
    "AUDIO_BRANCHES",
    "LogMelSpectrogram",
    "audio_cnn_branch",
    "audio_gru_branch",
]
