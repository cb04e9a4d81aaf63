"""Routes of this app, mounted under /api/v1/ by config.urls."""

from rest_framework.routers import SimpleRouter

from templates_market.api import ConnectorTemplateViewSet


class Router(SimpleRouter):
    """Every route answers with and without a trailing slash (docs/api.md §1)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("connector-templates", ConnectorTemplateViewSet, basename="connector-template")

urlpatterns = router.urls
