"""The SaaS admin API (docs/api.md §12), mounted under /api/v1/ by config.urls; every path with or without a
trailing slash."""

from django.urls import re_path

from console import api

urlpatterns = [
    re_path(r"^admin/stats/?$", api.StatsView.as_view(), name="admin-stats"),
    re_path(r"^admin/workspaces/?$", api.WorkspaceListView.as_view(), name="admin-workspaces"),
    re_path(r"^admin/executions/recent/?$", api.RecentExecutionsView.as_view(), name="admin-executions-recent"),
    re_path(
        r"^admin/templates/(?P<template_id>[^/]+)/feature/?$",
        api.TemplateFeatureView.as_view(),
        name="admin-template-feature",
    ),
    re_path(
        r"^admin/templates/(?P<template_id>[^/]+)/official/?$",
        api.TemplateOfficialView.as_view(),
        name="admin-template-official",
    ),
]
