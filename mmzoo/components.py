"""Every component mmzoo registers, in one import.

Importing this module registers mmzoo's image and text branches, fusions,
heads and model classes, and the captioning task: with Keras (so a saved
model loads with `safe_mode=True` and no `custom_objects`) and in mmzoo's
registries (`mmzoo.registry`). The zoo imports it before it loads an entry;
`import mmzoo` imports it with the rest of the API.
"""

from mmzoo import branches, coordconv, fusion, heads  # noqa: F401
from mmzoo.captioning import model as captioning_model  # noqa: F401  (the "captioning" head)
from mmzoo.tasks import model as tasks_model  # noqa: F401  (MultimodalModel)
