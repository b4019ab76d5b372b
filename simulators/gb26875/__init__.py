"""A GB/T 26875.3 user information transmission device that plays a fire-panel story (``python -m simulators.gb26875``)."""
