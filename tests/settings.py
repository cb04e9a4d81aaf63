"""Settings of the test suite: the project's settings in the embedded set-up (`DJANGO_DEBUG=true`, as `bin/serve`
sets it), unless the environment says otherwise. Subprocesses the tests start inherit the variable."""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: F403
