"""Model cards and the registry that checks a weights file against its card before it is loaded."""
