"""mlscope.dashboards."""
