"""The names a credential is stored under: its service name and its field names.

Written once here and imported wherever such a name is accepted (credentials API, connector auth
`credential`, template `required_credentials`, the secrets provider). No Django, so the crypto layer and
settings can import it.
"""

import re

SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SERVICE_NAME_RULE = "lowercase letters, digits, _ and -, starting with a letter or digit, at most 64"
FIELD_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
FIELD_NAME_RULE = "letters, digits, _ and - (not first), at most 64"
