"""Routes of this app, mounted under /api/v1/ by config.urls."""

from config.routers import Router
from executions.api import ExecutionViewSet

router = Router()
router.register("executions", ExecutionViewSet, basename="execution")

urlpatterns = router.urls
