"""The `mmzoo` command line (also `python -m mmzoo`).

Each subcommand is a pair of functions: one adds its arguments to the parser,
one runs it. Add a command by adding a pair to `COMMANDS`.
"""

import argparse
import sys


def _add_demo(parser):
    parser.add_argument("--out", default="mmzoo_runs/demo",
                        help="folder for the saved model and plots (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=30,
                        help="training steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16, help="default: %(default)s")
    parser.add_argument("--image-size", type=int, default=32, choices=(32, 64, 128),
                        help="scene size in pixels (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=480,
                        help="training examples in the built-in sample (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")


def _run_demo(args):
    from mmzoo.demo import run_demo

    run_demo(out=args.out, steps=args.steps, batch_size=args.batch_size,
             image_size=args.image_size, num_examples=args.examples, seed=args.seed)


COMMANDS = {
    "demo": (_add_demo, _run_demo,
             "build the document model, train it briefly on built-in scenes, save it"),
}


def make_parser():
    from mmzoo import __version__

    parser = argparse.ArgumentParser(
        prog="mmzoo", description="mmzoo: multimodal (image + text) Keras models."
    )
    parser.add_argument("--version", action="version", version=f"mmzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_arguments, run, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command_parser)
        command_parser.set_defaults(run=run)
    return parser


def main(argv=None):
    """Entry point of the `mmzoo` console script. Returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        args.run(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        # Mistakes the user can fix: one clear line, no traceback.
        print(f"mmzoo {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mmzoo {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
