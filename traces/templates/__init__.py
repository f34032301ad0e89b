"""The HTML report template (a package so it installs with the code)."""
