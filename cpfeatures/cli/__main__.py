"""``python -m cpfeatures.cli``: the same as the ``cpfeatures`` command."""

from . import main

main()
