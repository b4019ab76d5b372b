"""Shipped OPC-UA device profiles (YAML data, not code; see README.md here); a package so they install with the code."""
