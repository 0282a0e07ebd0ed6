"""The overview dashboard for grafanalib's ``generate-dashboard``.

    generate-dashboard -o overview.json dashboards/overview.dashboard.py

grafanalib's command writes its raw output: ``schemaVersion`` 12, legacy keys
and ``null`` fields, which Grafana 12's server-side migration refuses (see
``dashboards/_compat.py``). ``bdobs dashboards build`` writes the same
dashboard modernized, linted, and with its provisioning files; prefer it for
anything Grafana imports.
"""

from dashboards._grafanalib import to_grafanalib
from dashboards.overview import overview

dashboard = to_grafanalib(overview())
