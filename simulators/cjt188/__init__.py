"""CJ/T 188 water, heat and gas meters on a socat pseudo-terminal (``python -m simulators.cjt188``)."""
