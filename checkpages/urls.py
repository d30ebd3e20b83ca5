from django.urls import path
from django.views.generic import TemplateView

app_name = "checkpages"

# Placeholder routes so reverse() works; the check pages replace them.
urlpatterns = [
    path("", TemplateView.as_view(template_name="checkpages/home.html"), name="home"),
    path("check/<slug:model>/", TemplateView.as_view(template_name="x"), name="model"),
    path("r/<int:pk>", TemplateView.as_view(template_name="x"), name="result"),
]
