from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.routers import Router
from connectors.api import ConnectorViewSet
from contacts.api import ContactViewSet
from core.health import healthz
from monitoring.views import metrics
from triggers import urls as triggers_urls
from workspaces import api as workspaces_api

router = Router()
router.register("workspaces", workspaces_api.WorkspaceViewSet, basename="workspace")
router.register(
    r"workspaces/(?P<workspace_id>[0-9a-fA-F-]{36})/members", workspaces_api.MemberViewSet, basename="member"
)
router.register("connectors", ConnectorViewSet, basename="connector")
router.register("contacts", ContactViewSet, basename="contact")

auth_patterns = [
    re_path(r"^register/?$", workspaces_api.RegisterView.as_view(), name="register"),
    re_path(r"^token/?$", workspaces_api.TokenView.as_view(), name="token"),
    re_path(r"^token/refresh/?$", workspaces_api.TokenRefresh.as_view(), name="token-refresh"),
    re_path(r"^logout/?$", workspaces_api.LogoutView.as_view(), name="logout"),
    re_path(r"^password/?$", workspaces_api.PasswordChangeView.as_view(), name="password"),
]

api_v1 = [
    # First: a request is matched against the patterns in order, and the execute call is the hot path. None of
    # these routes overlaps another app's (executions.urls).
    path("", include("executions.urls")),
    path("auth/", include(auth_patterns)),
    *router.urls,
    path("", include("workspaces.urls")),
    path("", include(triggers_urls.api_urlpatterns)),
    path("", include("webhooks.urls")),
    path("", include("batches.urls")),
    path("", include("credentials.urls")),
    path("", include("templates_market.urls")),
    path("", include("usage.urls")),
    path("", include("console.urls")),
    path("", include("audit.urls")),
    path("", include("alerts.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    *triggers_urls.hook_urlpatterns,
    re_path(r"^metrics/?$", metrics, name="metrics"),
]
