from django.conf import settings


def product(request):
    return {
        "analyzer_backend": settings.ANALYZER_BACKEND,
        "analyzer_is_demo": settings.ANALYZER_BACKEND == "demo",
    }
