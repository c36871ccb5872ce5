"""`mmzoo export`: the command-line face of `mmzoo.export`.

Wired into `mmzoo/cli.py` through `COMMANDS`; `add_parser(subparsers)` adds it
to any other `argparse` parser.

Examples:

```
mmzoo export model.keras serving/1
mmzoo export model.keras serving/tpu --tpu --batch-size 8 --tokenizer tok/
mmzoo export model.keras phone/model.tflite --quantization int8 --data calib.npz
mmzoo export vqa_cnn_lstm_32px serving/vqa            # a zoo entry, tokenizer included
```
"""

import argparse
import os
import sys

HELP = "export a model as a SavedModel (serving) or a TFLite file (phones), checked"


def add_arguments(parser):
    """Adds the `export` arguments to `parser`."""
    parser.add_argument(
        "model", help="the model: a .keras file, or a zoo entry (name, folder, archive or "
                      "URL; its tokenizer comes along)")
    parser.add_argument(
        "path", help="destination: a folder (SavedModel) or a file ending in .tflite")
    parser.add_argument(
        "--format", choices=("saved_model", "tflite"), default=None,
        help="default: tflite when PATH ends in .tflite, else saved_model")
    parser.add_argument(
        "--quantization", choices=("float32", "float16", "dynamic_range", "int8"),
        default=None, help="TFLite variant (default: float32); int8 needs --data")
    parser.add_argument(
        "--tokenizer", metavar="PATH", default=None,
        help="a saved mmzoo tokenizer (folder or .json): adds the raw-string endpoint "
             "to a SavedModel, writes the vocabulary beside a TFLite file")
    parser.add_argument(
        "--batch-size", type=_batch_size, default="auto", metavar="N|dynamic",
        help="static batch size N, or 'dynamic' (a TFLite file the interpreter can "
             "resize); default: dynamic for SavedModel, 1 for TFLite")
    parser.add_argument(
        "--tpu", action="store_true",
        help="SavedModel for TPU: static batch, XLA-compile check, function alias")
    parser.add_argument(
        "--data", metavar="NPZ", default=None,
        help="example inputs (.npz with one array per model input, e.g. image, text): "
             "int8 calibration and parity check")
    parser.add_argument(
        "--parity-data", metavar="NPZ", default=None,
        help="held-back inputs for the parity check (default: from --data)")
    parser.add_argument(
        "--parity", choices=("raise", "warn", "skip"), default="raise",
        help="on a failed parity check: raise (write nothing, the default), warn "
             "(write anyway), or skip the check")
    parser.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON instead of text")


def _batch_size(text):
    if text == "auto":  # the default
        return text
    if text == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or 'dynamic'. Received: --batch-size {text}")
    return value


def add_parser(subparsers):
    """Adds the `export` subcommand to an `argparse` subparsers object."""
    parser = subparsers.add_parser("export", help=HELP, description=HELP)
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def _load_npz(path, option):
    import numpy as np

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{option}: no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"{option} must be an .npz file of arrays. Received: {path!r} ({e})")


def run(args):
    """Runs `mmzoo export` with parsed `args`; exits with status 1 on failure."""
    from mmzoo.export.api import export
    from mmzoo.export.report import ExportError

    fmt = args.format
    if fmt is None:
        fmt = "tflite" if args.path.endswith(".tflite") or args.quantization else "saved_model"
    is_entry = not args.model.endswith(".keras")
    if args.quantization == "int8" and not args.data and not is_entry:
        print("mmzoo export: error: --quantization int8 needs --data NPZ: a few hundred "
              "real example inputs (one array per model input, e.g. image and text) to "
              "calibrate on and check against.", file=sys.stderr)
        raise SystemExit(1)
    try:
        tokenizer = None
        if args.tokenizer:
            from mmzoo.data import Tokenizer

            tokenizer = Tokenizer.load(args.tokenizer)
        model = args.model
        if not model.endswith(".keras"):
            from mmzoo.zoo import load

            model = load(model)
        data = _load_npz(args.data, "--data") if args.data else None
        parity_data = (_load_npz(args.parity_data, "--parity-data")
                       if args.parity_data else None)
        report = export(
            model, args.path, format=fmt, quantization=args.quantization,
            tokenizer=tokenizer, batch_size=args.batch_size, tpu=args.tpu,
            representative_data=data, parity_data=parity_data,
            parity=None if args.parity == "skip" else args.parity,
            overwrite=args.overwrite, verbose=not args.json,
        )
    except (ExportError, ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        # What the user can act on, as one message without a traceback.
        print(f"mmzoo export: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if args.json:
        print(report.to_json())


# For mmzoo/cli.py's command table: name -> (add_arguments, run, help).
COMMANDS = {"export": (add_arguments, run, HELP)}
