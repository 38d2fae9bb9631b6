"""The weekly HTML risk report (reports.weekly.render_report)."""
