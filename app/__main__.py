"""``python -m app [FILE.dlp | SPEC.json | PRESET]``."""
import sys

from .main import main

sys.exit(main())
