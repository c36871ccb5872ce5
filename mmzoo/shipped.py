"""Where the shipped zoo entries and recipes are.

In a checkout (or an editable install) they are the repository's
`saved_models/` and `recipes/` folders, beside the `mmzoo` package. A wheel
(`pip install .`, `python -m build`) carries copies inside the package, as
`mmzoo/_shipped/saved_models` and `mmzoo/_shipped/recipes` (see `setup.py`),
so an installed mmzoo lists and loads the same entries as the checkout.
"""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
KINDS = ("saved_models", "recipes")


def shipped_dir(kind):
    """The folder of the shipped `kind` (`"saved_models"` or `"recipes"`).

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    installed = PACKAGE / "_shipped" / kind
    return installed if installed.is_dir() else PACKAGE.parent / kind
