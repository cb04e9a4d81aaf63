"""Routes of this app, mounted under /api/v1/ by config.urls."""

from config.routers import Router
from executions.api import ExecutionViewSet
from executions.connector_api import ConnectorExecutionViewSet

router = Router()
router.register("executions", ExecutionViewSet, basename="execution")
# POST connectors/{id}/execute, GET connectors/{id}/executions and connectors/{id}/stats: only detail actions,
# so these routes sit beside the connector's own (connectors.api) without shadowing any of them.
router.register("connectors", ConnectorExecutionViewSet, basename="connector")

urlpatterns = router.urls
