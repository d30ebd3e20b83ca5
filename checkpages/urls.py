from django.urls import path

from checkpages import views

app_name = "checkpages"

urlpatterns = [
    path("", views.home, name="home"),
    path("check/", views.index, name="index"),
    path("check/<slug:model>/", views.model_page, name="model"),
    path("check/<slug:model>/<slug:gpu>/", views.pair, name="pair"),
    path("r/<int:pk>", views.result, name="result"),
]
