"""A synthetic device source for demos and soak tests without hardware."""
