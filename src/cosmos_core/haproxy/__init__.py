"""HAProxy-specific helpers: the runtime API client and the churn planner."""
