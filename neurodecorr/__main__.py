import sys

from neurodecorr.cli import main

sys.exit(main())
