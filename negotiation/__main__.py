"""``python -m negotiation``: the ``negotiate`` command under a name no other package claims.

NegMAS also installs a console script called ``negotiate``; whichever package is installed
last owns that name, while this module always runs ours.
"""

from negotiation.cli import main

main()
