"""``python -m mlscope.cli``: the ``mlscope`` command."""
import sys

from . import main

sys.exit(main())
