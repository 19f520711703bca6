"""The dashboard's page, script and style sheet, served by ``api/dashboard_page.py``."""
