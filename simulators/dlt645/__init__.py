"""DL/T 645 meters on a socat pseudo-terminal (``python -m simulators.dlt645``); ``line.py`` is shared with CJ/T 188."""
