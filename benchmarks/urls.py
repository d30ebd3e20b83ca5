from django.urls import path  # noqa: F401 - the contributions and API routes go here

urlpatterns: list = []
