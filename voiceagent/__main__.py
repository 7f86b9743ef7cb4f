"""`python -m voiceagent` runs the CLI (`python -m voiceagent serve`)."""

from voiceagent.cli import main

raise SystemExit(main())
