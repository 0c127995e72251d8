__version__ = "0.1.0"

import sys as _sys

if _sys.argv[:1] == ["-m"]:  # `python -m jaxrl.algos.X ...`: set up devices before JAX starts
    from jaxrl.core.devices import prepare_cli as _prepare_cli

    _prepare_cli(_sys.argv[1:])
