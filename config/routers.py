from rest_framework.routers import SimpleRouter


class Router(SimpleRouter):
    """Every route answers with and without a trailing slash (docs/api.md §1)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
