from django.urls import path

from checkpages import data_views, embed_views, tool_views, views

app_name = "checkpages"

urlpatterns = [
    path("", views.home, name="home"),
    path("pick", tool_views.pick, name="pick"),
    path("check/", views.index, name="index"),
    path("check/<slug:model>/", views.model_page, name="model"),
    path("check/<slug:model>/<slug:gpu>/", views.pair, name="pair"),
    path("check/<slug:model>/<slug:gpu>/badge.svg", embed_views.badge, name="badge"),
    path("check/<slug:model>/<slug:gpu>/feed.atom", embed_views.feed, name="feed"),
    path("compare/<slug:model>/", tool_views.compare, name="compare"),
    path("results/", tool_views.results, name="results"),
    path("r/<int:pk>", views.result, name="result"),
    path("data/", data_views.index, name="data"),
    path("data/latest/<str:filename>", data_views.latest, name="data-latest"),
    path("data/<str:name>/<str:filename>", data_views.snapshot_file, name="data-file"),
    # The slash every other page has: to the permalink the agent prints.
    path("r/<int:pk>/", views.result_with_slash),
]
