"""The web dashboard at ``/ui/``: server-rendered pages over the rollups, for the
advertiser's managers (overview, partners, funnel, brand conflicts, targeting, advice).

``queries`` asks ClickHouse, ``advice`` turns figures into plain words, ``pages`` serves
them through Jinja2 templates, ``auth`` decides who may look. See docs/dashboard.md.
"""

from clicktrail.ui.pages import dashboard_app

__all__ = ["dashboard_app"]
