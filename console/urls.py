"""Routes of this app, mounted under /api/v1/ by config.urls."""

urlpatterns: list = []
