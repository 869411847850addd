"""The catalogue of scaling-law families, one module per family.

Importing this package imports every module in it, and defining a family registers it:
``bayescale.laws()`` lists their names. A new family is a new module here, nothing else.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
