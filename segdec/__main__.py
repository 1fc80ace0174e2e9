import sys

from segdec.cli import main

sys.exit(main())
