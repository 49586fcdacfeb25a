from django.conf import settings

from . import notices


def product(request):
    return {
        "analyzer_backend": settings.ANALYZER_BACKEND,
        "analyzer_is_demo": settings.ANALYZER_BACKEND == "demo",
        "demo_notice": notices.DEMO_NOTICE,
        "hai_def_notice": notices.HAI_DEF_NOTICE,
    }
