"""The `mmzoo` command line (also `python -m mmzoo`).

Each subcommand is a pair of functions: one adds its arguments to the parser,
one runs it. Add a command by adding a pair to `COMMANDS`.

Starting the command line imports no TensorFlow: `--help`, `list` and `info`
answer at once. A command that needs TensorFlow imports it (and the rest of
mmzoo) inside its run function, with TensorFlow's C++ log lines turned off
unless `TF_CPP_MIN_LOG_LEVEL` says otherwise.
"""

import argparse
import contextlib
import os
import sys

from mmzoo._version import __version__
from mmzoo.export import cli as _export_cli
from mmzoo.zoo import cli as _zoo_cli


def _add_demo(parser):
    parser.add_argument("--out", default="mmzoo_runs/demo",
                        help="folder for the saved model, exports and plots (default: "
                             "%(default)s)")
    parser.add_argument("--steps", type=int, default=1500,
                        help="training steps of the small model, each on fresh scenes "
                             "(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--image-size", type=int, default=32, choices=(32, 64, 128),
                        help="scene size in pixels (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=1000,
                        help="evaluation questions (the fixed validation split; default: "
                             "%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--entry", default="mobile_vqa",
                        help="zoo entry to load and export (default: %(default)s)")
    parser.add_argument("--captioner", default="shapes_captioner",
                        help="captioning zoo entry that captions the scenes; 'none' skips "
                             "it (default: %(default)s)")
    parser.add_argument("--no-export", action="store_true",
                        help="skip exporting the entry to SavedModel and TFLite")


def _run_demo(args):
    from mmzoo.demo import run_demo

    run_demo(out=args.out, steps=args.steps, batch_size=args.batch_size,
             image_size=args.image_size, num_examples=args.examples, seed=args.seed,
             entry=args.entry, export=not args.no_export,
             captioner=None if args.captioner.lower() == "none" else args.captioner)


def _add_train(parser):
    parser.add_argument("recipe", help="a recipe file (recipes/*.toml), or the name of a "
                        "recipe in ./recipes or among the shipped ones")
    parser.add_argument("--work-dir", default=None,
                        help="the run folder: checkpoints, TensorBoard logs, history, plot, "
                             "metrics and the trained entry, in <name>/ (default: "
                             "mmzoo_runs/<name>)")
    parser.add_argument("--out", default=None,
                        help="the entry folder to write; its name is the entry's (default: "
                             "<work-dir>/<name>); publish it into the zoo with `mmzoo publish`")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the recipe's training.epochs")
    parser.add_argument("--seed", type=int, default=None,
                        help="override the recipe's training.seed")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder (default: the recipe's, or TFDS's own)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing entry at --out")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--strategy", default="default",
                        choices=("default", "mirrored", "multiworker", "tpu"),
                        help="tf.distribute strategy: one device, all local GPUs (or logical "
                             "CPUs), the workers of TF_CONFIG, or a TPU (default: %(default)s)")
    parser.add_argument("--tpu", default=None,
                        help="--strategy tpu: the TPU's name or grpc:// address (default: "
                             "TPU_NAME, or the local TPU VM)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default="auto",
                        help="continue from the backup in --work-dir (an error if there is "
                             "none); by default a backup there is resumed automatically")
    resume.add_argument("--no-resume", dest="resume", action="store_false",
                        help="ignore a backup in --work-dir and start afresh")
    parser.add_argument("--backup-every", type=int, default=100,
                        help="training steps between backups for exact resume, besides one "
                             "at every epoch's end (default: %(default)s)")


def _run_train(args):
    from mmzoo import training

    recipe = training.load_recipe(args.recipe).replace(epochs=args.epochs, seed=args.seed)
    work_dir = args.work_dir or os.path.join("mmzoo_runs", recipe.name)
    out = args.out or os.path.join(work_dir, recipe.name)
    if os.path.exists(out) and not args.overwrite:
        # Before hours of training, not after.
        raise FileExistsError(f"{out!r} exists; pass --overwrite to replace it, or --out.")
    if args.backup_every < 1:
        raise ValueError(f"--backup-every must be >= 1. Received: {args.backup_every}")
    from mmzoo.training import distribute

    # Before anything else touches TensorFlow (multiworker and TPU need that).
    strategy = distribute.get_strategy(args.strategy, tpu=args.tpu)
    result = training.train(recipe, work_dir, data_dir=args.data_dir,
                            verbose=0 if args.quiet else "auto", strategy=strategy,
                            resume=args.resume, backup_every=args.backup_every)
    if not distribute.is_chief():
        return  # the chief writes the entry
    from mmzoo.zoo import save_entry
    from mmzoo.zoo.card import TRAINING_CURVE

    curve = result.paths["plot"]
    entry = save_entry(out, result.model, result.preprocessor(),
                       metadata=result.entry_metadata(), overwrite=args.overwrite,
                       extra_files={TRAINING_CURVE: curve} if os.path.isfile(curve) else None)
    if not args.quiet:
        print(f"mmzoo train: {recipe.name}: {result.epochs_run} epochs in "
              f"{result.training_seconds:.0f} s (best epoch {result.best_epoch})")
        rows = [(key, f"{value:.4f}" if isinstance(value, float) else value)
                for key, value in result.metrics.items()]
        rows += [("training curve", result.paths["plot"]), ("entry", entry),
                 ("publish it with", f"mmzoo publish {entry}")]
        width = max(len(key) for key, _ in rows)
        for key, value in rows:
            print(f"  {key:<{width}} {value}")


def _add_publish(parser):
    parser.add_argument("source", help="a trained entry folder, or the run folder of "
                        "`mmzoo train` (whose entry is <run>/<name>)")
    parser.add_argument("--to", default=None,
                        help="the zoo folder to publish into (default: the shipped "
                             "saved_models/)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing entry of the same name")


def _run_publish(args):
    from mmzoo.zoo import publish_entry

    path = publish_entry(args.source, args.to, overwrite=args.overwrite)
    print(f"mmzoo publish: {path}")


def _add_tune(parser):
    parser.add_argument("recipe", help="a recipe file (recipes/*.toml), or the name of a "
                        "recipe in ./recipes or among the shipped ones")
    parser.add_argument("--space", required=True,
                        help="TOML file of the options to search: a list is a choice, a "
                             "table with min and max a range (see README: hyperparameter "
                             "search)")
    parser.add_argument("--out", default=None,
                        help="folder for the results and the tuner's state; an earlier "
                             "search there is continued (default: mmzoo_runs/tune_<name>)")
    parser.add_argument("--tuner", default="hyperband", choices=("hyperband", "bayesian",
                                                                "random"),
                        help="KerasTuner's search algorithm (default: %(default)s)")
    parser.add_argument("--max-trials", type=int, default=None,
                        help="at most this many trials (default: Hyperband's schedule, 10 "
                             "for the others)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no trial after this many minutes")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epochs of the longest trial (default: the recipe's)")
    parser.add_argument("--num-train", type=int, default=None,
                        help="scenes per epoch in the trials (default: the recipe's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard an earlier search in --out and start afresh")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch output")


def _run_tune(args):
    from mmzoo.training import load_recipe
    from mmzoo.training.tuning import tune

    recipe = load_recipe(args.recipe)
    out = args.out or os.path.join("mmzoo_runs", f"tune_{recipe.name}")
    result = tune(recipe, args.space, out, tuner=args.tuner, max_trials=args.max_trials,
                  max_minutes=args.max_minutes, max_epochs=args.max_epochs,
                  num_train=args.num_train, overwrite=args.overwrite,
                  verbose=0 if args.quiet else "auto")
    print(result.table())
    print(f"mmzoo tune: {len(result.trials)} trials; best {result.objective[0]} "
          f"{result.trials[0]['score']:.4f}: {result.best_values}")
    print(f"  table        {result.paths['table']}")
    print(f"  plot         {result.paths['plot']}")
    print(f"  best recipe  {result.paths['recipe']}  (mmzoo train {result.paths['recipe']})")


COMMANDS = {
    "demo": (_add_demo, _run_demo,
             "the main job: a zoo entry answers and exports; the document model trains briefly"),
    "train": (_add_train, _run_train,
              "train a recipe, measure it on the test split, write its entry in the run folder"),
    "publish": (_add_publish, _run_publish,
                "copy a trained entry (verified) into the zoo's saved_models/"),
    "tune": (_add_tune, _run_tune,
             "search a recipe's model options with KerasTuner; write the best as a recipe"),
    # Zoo entries (mmzoo/zoo/cli.py): list, info, predict, evaluate.
    **_zoo_cli.COMMANDS,
    # Export for serving and phones (mmzoo/export/cli.py).
    **_export_cli.COMMANDS,
}


def make_parser():
    parser = argparse.ArgumentParser(
        prog="mmzoo", description="mmzoo: multimodal (image + text) Keras models."
    )
    parser.add_argument("--version", action="version", version=f"mmzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_arguments, run, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command_parser)
        command_parser.set_defaults(run=run, flag_names=_flag_names(command_parser, name))
    return parser


# Python argument names that a command's flag sets under another name.
PYTHON_NAMES = {
    "predict": {"images": "--image", "texts": "--text", "audio": "--audio"},
    "explain": {"images": "--image", "texts": "--text", "image_method": "--image-method",
                "image_layer": "--image-layer", "text_baseline": "--text-baseline"},
    "evaluate": {"num_examples": "--examples"},
    "tune": {"search_space": "--space"},
}


def _flag_names(parser, command):
    """`{python name: flag}` for a command's options (`top_k` -> `--top-k`)."""
    names = {}
    for action in parser._actions:
        flags = [o for o in action.option_strings if o.startswith("--")]
        if flags and action.dest not in ("help",):
            names[action.dest] = (flags[0], action.nargs == 0)
    for python, flag in PYTHON_NAMES.get(command, {}).items():
        names[python] = (flag, False)
    return names


def flag_wording(message, flag_names):
    """An error message from the Python API with the command's flags in it.

    `pass overwrite=True` -> `pass --overwrite`, `Received: texts=None` ->
    `Received: no --text`, `batch_size=0` -> `--batch-size=0`, `images[1]`
    -> `--image #2`. Only code-like forms (`name=`, `` `name` ``,
    `name[i]`, `(name)`, a trailing `Received: name`) change: prose stays.
    """
    import re

    for name, (flag, is_switch) in sorted(flag_names.items(), key=lambda kv: -len(kv[0])):
        word = rf"(?<![\w.\-\[]){re.escape(name)}"
        if is_switch:
            message = re.sub(word + r"=True\b", flag, message)
            message = re.sub(word + r"=False\b", f"no {flag}", message)
        message = re.sub(word + r"=None\b", f"no {flag}", message)
        message = re.sub(word + r"=", f"{flag}=", message)
        message = re.sub(rf"`{re.escape(name)}`", f"`{flag}`", message)
        message = re.sub(word + r"\[\d+\]=", f"{flag}=", message)
        message = re.sub(word + r"\[(\d+)\]", lambda m: f"{flag} #{int(m.group(1)) + 1}",
                         message)
        message = re.sub(rf"\({re.escape(name)}\)", f"({flag})", message)
        message = re.sub(rf"(Received: ){re.escape(name)}(?=[\s.,;)]|$)", rf"\g<1>{flag}",
                         message)
    return message


@contextlib.contextmanager
def _quiet_tensorflow():
    """No TensorFlow C++ info and warning lines (oneDNN, CUDA stubs) unless the user asks.

    Set before a command imports TensorFlow, which reads it then; put back
    afterwards, for a caller that runs `main` in its own process.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        yield
    finally:
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


def _use_onednn_kernels():
    """Turns on TensorFlow's oneDNN CPU kernels where TensorFlow leaves them off.

    TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 deep-learning
    instructions (Intel Cascade Lake and newer); on others (AVX2, AMD) it runs
    Eigen's kernels. On the 2-core AVX2 machines mmzoo is trained and tested on,
    oneDNN takes a fifth less CPU time per `shapes_vqa` training step
    (bench/cpu_step.py: 0.80 of Eigen's, side by side). TensorFlow reads the setting once, when it is imported,
    so this acts only before the command imports it, and it stays set for the
    process (and the processes it starts). A value the user set is kept:
    `TF_ENABLE_ONEDNN_OPTS=0 mmzoo ...` runs Eigen's kernels.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def main(argv=None):
    """Entry point of the `mmzoo` console script. Returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    _use_onednn_kernels()
    try:
        with _quiet_tensorflow():
            # A command returns an exit status of its own when its check fails
            # (`mmzoo evaluate`: the card is not reproduced).
            status = args.run(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        # Mistakes the user can fix: one clear line, no traceback, in the
        # command's flags rather than the Python API's argument names.
        message = flag_wording(str(e), getattr(args, "flag_names", {}))
        print(f"mmzoo {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mmzoo {args.command}: interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0
