import sys

from picmatch.cli import main

sys.exit(main())
