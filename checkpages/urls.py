from django.urls import path

from checkpages import tool_views, views

app_name = "checkpages"

urlpatterns = [
    path("", views.home, name="home"),
    path("pick", tool_views.pick, name="pick"),
    path("check/", views.index, name="index"),
    path("check/<slug:model>/", views.model_page, name="model"),
    path("check/<slug:model>/<slug:gpu>/", views.pair, name="pair"),
    path("compare/<slug:model>/", tool_views.compare, name="compare"),
    path("results/", tool_views.results, name="results"),
    path("r/<int:pk>", views.result, name="result"),
    # The slash every other page has: to the permalink the agent prints.
    path("r/<int:pk>/", views.result_with_slash),
]
