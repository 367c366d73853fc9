"""The engine: the protocol, the store, model access, jobs and the plan."""
