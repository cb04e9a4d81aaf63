from rest_framework.routers import SimpleRouter


class Router(SimpleRouter):
    """Every route answers with and without a trailing slash (CONTRACT §3)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
