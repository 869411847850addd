"""The catalogue of scaling-law families, one module per family.

Importing this package registers every family; ``bayescale.laws()`` lists their names.
"""

from bayescale.models.chinchilla import Chinchilla
from bayescale.models.kaplan import Kaplan
from bayescale.models.power_law import PowerLaw
from bayescale.models.pure_power_law import PurePowerLaw

__all__ = ["Chinchilla", "Kaplan", "PowerLaw", "PurePowerLaw"]
