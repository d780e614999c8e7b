"""Cost: what a call cost (prices), and what routing a workload would save (projection)."""
