"""``make demo``: every finished block end to end (:func:`scoville.sim.demo.main`)."""

import sys

from scoville.sim.demo import main


if __name__ == "__main__":
    sys.exit(main())
