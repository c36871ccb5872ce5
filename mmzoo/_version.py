"""mmzoo's version: one place, read by the package, setup.cfg and every record mmzoo writes."""

__version__ = "0.1.0"
